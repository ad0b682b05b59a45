"""Helpers the tests share, in one place: what the integration tests drive the real stack with
(`messaging_support`, `hostile_support`, `private_broker`, `saga_harness`, `worker_process`), the
traced round trip run in a subprocess (`python -m tests.support.traced_roundtrip`) and the snapshot
that proves a test run left the developer's stack alone (`developer_state`).

Handler unit tests without Kafka use `messaging.testing` instead (the in-memory transport)."""
