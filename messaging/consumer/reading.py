"""Reading a record: one header scan, signature check, decode (with upcasting), signer and freshness
checks, and which handlers serve it.

A record that fails any check is not raised but marked (`InFlight.error`), so one bad record never
stalls a batch: failure routing classifies it like a handler error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Message

import schemas
from messaging.consumer.claims import key_requests
from messaging.consumer.dispatch import HandlerTable
from messaging.consumer.freshness import DEFAULT_MAX_EVENT_AGE_S, stale_reason
from messaging.consumer.inflight import InFlight
from messaging.errors import InconsistencyError

__all__ = ["RecordReader"]

log = logging.getLogger(__name__)

# Headers our producer sets that can never be a signature header (whatever their case), so the
# signature check need not look at them; every other header still goes to `Keyring.verify`.
_NOT_SIGNATURE_HEADERS = frozenset({
    "traceparent", "tracestate", "content-type", "x-cf-event-type", "x-cf-event-id", "ce_specversion",
    "ce_id", "ce_type", "ce_source", "ce_time", "ce_dataschema", "ce_correlationid", "ce_tenantid",
    "ce_subject",
})

_SIGNATURE_HEADER = schemas.SIGNATURE_HEADER
_KEY_ID_HEADER = schemas.KEY_ID_HEADER
_SIGNED_AT_HEADER = schemas.SIGNED_AT_HEADER


class RecordReader:
    """Turns a fetched message into an `InFlight` record; `with_keys` adds its idempotency key requests
    (only worth building when a store records them)."""

    def __init__(self, keyring: schemas.Keyring, signing_mode: schemas.SigningMode, handlers: HandlerTable, *,
                 accept: Callable[[schemas.Envelope], bool] | None = None,
                 max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S, with_keys: bool = True) -> None:
        self.keyring = keyring
        self.signing_mode = schemas.SigningMode(signing_mode)
        self.handlers = handlers
        self.accept = accept
        self.max_event_age_s = max_event_age_s
        self.with_keys = with_keys

    def read(self, msg: Message) -> InFlight:
        """Never raises: whatever goes wrong with the record is its `error` (the consumer reads a
        batch's records while it handles them, so a raise would fail records already handled)."""
        item = InFlight(msg, [])
        try:
            return self._read(msg, item)
        except Exception as exc:  # noqa: BLE001 - e.g. a raising `accept`: the record is failure-routed
            item.error = exc
            return item

    def _read(self, msg: Message, item: InFlight) -> InFlight:
        headers = item.headers = msg.headers() or []  # a fresh list per call
        value = msg.value() or b""
        # One pass over the headers finds the signature, the key id, the signed time and the trace parent.
        signatures: list[str] = []
        key_ids: list[str] = []
        stamps: list[str] = []
        for name, raw in headers:
            if name in _NOT_SIGNATURE_HEADERS:
                if name == "traceparent":
                    item.trace_parent = raw
                continue
            if raw is None:
                continue
            lowered = name.lower()
            if lowered == _SIGNATURE_HEADER:
                signatures.append(raw.decode("ascii", "replace").strip())
            elif lowered == _KEY_ID_HEADER:
                key_ids.append(raw.decode("ascii", "replace").strip())
            elif lowered == _SIGNED_AT_HEADER:
                stamps.append(raw.decode("ascii", "replace").strip())
        try:
            item.check = check = self.keyring.verify_found(value, signatures, key_ids, stamps)
            if not check.ok:
                schemas.enforce_signature(check, self.signing_mode, logger=log,
                                          context=f"{item.topic}/{item.partition}/{item.offset}")
            item.envelope = envelope = schemas.decode(value)
            # Who signed it must be who may say it (the signed `producer` included); the policy, with
            # the record's position for its message, runs only for a violation (not per record).
            if check.ok and schemas.signer_violation(envelope, check) is not None:
                schemas.authorize_signer(envelope, check, self.signing_mode, logger=log,
                                         context=f"{item.topic}/{item.partition}/{item.offset}")
        except schemas.ContractError as exc:
            if self.accept is not None and self._served_elsewhere(value, item.envelope):
                return item  # another shard's record: that shard dead-letters it
            item.error = exc
            return item
        except Exception as exc:  # noqa: BLE001 - a record must never stall the batch: classify it
            item.error = exc
            return item
        stale = stale_reason(envelope, check, self.max_event_age_s)
        if stale is not None:
            item.error = InconsistencyError(stale)
            return item
        if self.accept is not None and not self.accept(envelope):
            return item  # not ours: no specs, so no key, no handler; committed with the batch
        item.specs = specs = self.handlers.specs_for(envelope.event_type)
        if self.with_keys:
            item.requests = key_requests(envelope, specs)
        return item

    def _served_elsewhere(self, value: bytes, envelope: schemas.Envelope | None) -> bool:
        """A tenant-scoped consumer leaves a record it cannot trust to the shard of the tenant it names
        (which dead-letters it), so shards and test runs sharing topics do not each dead-letter every
        bad record of everybody else's history. Undecodable records stay this consumer's."""
        assert self.accept is not None
        if envelope is None:
            try:
                envelope = schemas.decode(value)
            except schemas.ContractError:
                return False
        return not self.accept(envelope)
