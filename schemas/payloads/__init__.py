"""Typed payloads (the envelope's `data`), one module per domain, every version of every event type.

Class names end in the payload version (`OrderCreatedV3`); `schemas.catalog` maps each
(event type, version) to its class.
"""
