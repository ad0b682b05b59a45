"""Whole Kafka records: the one place that combines encoding, routing, signing and CloudEvents headers,
so producers and consumers cannot get the order of operations wrong (sign after encode, verify before
decode)."""

from __future__ import annotations

from typing import NamedTuple

from schemas._internal.authorization import SignerPolicy
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
    def __init__(self, codec: Codec, signers: SignerPolicy) -> None:
        self._codec = codec
        self._signers = signers

    def build_record(self, envelope: Envelope, keyring: Keyring, *, env: str = "dev") -> OutboundRecord:
        """Encode, sign (as `keyring`'s service, which must publish the type) and address `envelope`;
        headers = signature + key id + signed-at + CloudEvents mirror."""
        value = self._codec.encode(envelope)
        headers = keyring.sign(value, event_type=envelope.event_type) + cloudevent_headers(envelope)
        return OutboundRecord(topic_for(envelope.event_type, env), message_key(envelope), value, headers)

    def read_record(
        self, value: bytes, headers: Headers, keyring: Keyring, mode: SigningMode | str
    ) -> tuple[Envelope, SignatureCheck]:
        """Verify (policy per `mode`), decode and upcast, then check the signer may publish it. Raises
        only `ContractError`s (`SignatureError` for rejected signatures, `UnauthorizedSignerError`
        for a signer that is not the type's publisher or disagrees with `producer`)."""
        check = enforce_signature(keyring.verify(value, headers), mode)
        envelope = self._codec.decode(value)
        self._signers.enforce(envelope, check, mode)
        return envelope, check
