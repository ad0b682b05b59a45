"""The Kafka runtime under every service: signed ordered producer, at-least-once consumer, retry
profiles and error classes, dead-letter queue, file fallback, PostgreSQL idempotency keys.

Module map: `producer` (EventProducer), `consumer` (EventConsumer), `handlers` (HandlerContext,
HandlerSpec), `errors` (the exception hierarchy, `classify`), `retry` (profiles), `deadletter`
(DLQ record format), `dlq` (DLQ outcomes: retry / discard / alert / manual review), `spool` +
`replay` (file fallback), `idempotency`, `tables`, `topics`, `metrics`, `wiring` (builders from
Settings; `consumer_from` is how services build consumers).
"""
