"""Whole Kafka records: the one place that combines encoding, routing, signing and CloudEvents headers,
so producers and consumers cannot get the order of operations wrong (sign after encode, verify before
decode)."""

from __future__ import annotations

from typing import NamedTuple

from schemas._internal.cloudevents import cloudevent_headers
from schemas._internal.codec import Codec
from schemas._internal.envelope import Envelope
from schemas._internal.routing import message_key, topic_for
from schemas._internal.signing import Headers, Keyring, SignatureCheck, SigningMode, enforce_signature

__all__ = ["OutboundRecord", "RecordIO"]


class OutboundRecord(NamedTuple):
    """Arguments for `Producer.produce(topic, value, key, headers=...)`."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class RecordIO:
    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def build_record(self, envelope: Envelope, keyring: Keyring, *, env: str = "dev") -> OutboundRecord:
        """Encode, sign and address `envelope`; headers = signature + key id + CloudEvents mirror."""
        value = self._codec.encode(envelope)
        headers = keyring.sign(value) + cloudevent_headers(envelope)
        return OutboundRecord(topic_for(envelope.event_type, env), message_key(envelope), value, headers)

    def read_record(
        self, value: bytes, headers: Headers, keyring: Keyring, mode: SigningMode | str
    ) -> tuple[Envelope, SignatureCheck]:
        """Verify (policy per `mode`), then decode and upcast. Raises only `ContractError`s
        (`SignatureError` for rejected signatures)."""
        check = enforce_signature(keyring.verify(value, headers), mode)
        return self._codec.decode(value), check
