"""The Cloud Factory event contract: the only language the seven domain services share.

Producers build envelopes with `new_event`/`derive_event`, turn them into Kafka records with
`build_record` (or `encode` + `Keyring.sign` + `cloudevent_headers` + `topic_for`), consumers turn records
back with `read_record` (or `Keyring.verify` + `enforce_signature` + `decode`). Everything about an event
type — publisher, consumers, retry profile, payload class per version — is in `catalog`.

Exceptions (all bad input, never retryable)::

    ValueError
     └── ContractError              .field (dotted wire path or None), .reason, category "validation"
          ├── UnknownEventTypeError   eventType not in this build's catalog
          ├── UnsupportedVersionError payload version unknown to this build (e.g. from the future)
          └── SignatureError          signature missing/invalid and SigningMode.PRODUCTION (.check)
               └── UnauthorizedSignerError  verified, but the signer is not the type's publisher
                                            or disagrees with `producer`

`decode` raises nothing but these, whatever bytes it is given.
"""

from __future__ import annotations

from schemas._internal.authorization import SignerPolicy, producer_name
from schemas._internal.builders import EventFactory
from schemas._internal.catalog import Catalog, CatalogEntry
from schemas._internal.cloudevents import cloudevent_headers, dataschema_uri
from schemas._internal.codec import Codec
from schemas._internal.envelope import Actor, ActorType, Envelope
from schemas._internal.errors import (
    ContractError,
    SignatureError,
    UnauthorizedSignerError,
    UnknownEventTypeError,
    UnsupportedVersionError,
)
from schemas._internal.headers import EVENT_ID_HEADER, EVENT_TYPE_HEADER
from schemas._internal.ids import stable_event_id
from schemas._internal.keys import Algorithm, generate_entry, public_entry
from schemas._internal.records import OutboundRecord, RecordIO
from schemas._internal.routing import (
    DLQ_SUFFIX,
    TopicName,
    all_topics,
    dlq_topic_for,
    dlq_topic_of,
    dlq_topics_pattern,
    is_dlq_topic,
    message_key,
    parse_topic,
    subscription_topics,
    topic_for,
)
from schemas._internal.services import EdgeProcess, RetryProfile, Service
from schemas._internal.signing import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNED_AT_HEADER,
    Keyring,
    SignatureCheck,
    SignatureStatus,
    SigningMode,
    enforce_signature,
)
from schemas.definitions import catalog
from schemas.payloads._base import Money, Payload

__all__ = [
    "DLQ_SUFFIX",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "SIGNED_AT_HEADER",
    "Actor",
    "ActorType",
    "Algorithm",
    "Catalog",
    "CatalogEntry",
    "ContractError",
    "EdgeProcess",
    "Envelope",
    "Keyring",
    "Money",
    "OutboundRecord",
    "Payload",
    "RetryProfile",
    "Service",
    "SignatureCheck",
    "SignatureError",
    "SignatureStatus",
    "SigningMode",
    "TopicName",
    "UnauthorizedSignerError",
    "UnknownEventTypeError",
    "UnsupportedVersionError",
    "all_topics",
    "authorize_signer",
    "build_record",
    "catalog",
    "cloudevent_headers",
    "dataschema_uri",
    "decode",
    "derive_event",
    "dlq_topic_for",
    "dlq_topic_of",
    "dlq_topics_pattern",
    "encode",
    "enforce_signature",
    "generate_entry",
    "is_dlq_topic",
    "message_key",
    "new_event",
    "parse_topic",
    "producer_name",
    "public_entry",
    "read_record",
    "signer_violation",
    "stable_event_id",
    "subscription_topics",
    "topic_for",
    "upcast",
]

_codec = Codec(catalog)
_factory = EventFactory(catalog)
_signers = SignerPolicy(catalog)
_records = RecordIO(_codec, _signers)

encode = _codec.encode
decode = _codec.decode
upcast = _codec.upcast
new_event = _factory.new_event
derive_event = _factory.derive_event
build_record = _records.build_record
read_record = _records.read_record
authorize_signer = _signers.enforce
signer_violation = _signers.violation
