"""Topic names, record keys and the CloudEvents mirror read by the stock `cloudevents` package."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas import (
    ContractError,
    UnknownEventTypeError,
    all_topics,
    catalog,
    cloudevent_headers,
    dlq_topic_for,
    message_key,
    parse_topic,
    subscription_topics,
    topic_for,
)
from schemas.examples import example_event


def test_topic_names() -> None:
    assert topic_for("order.fulfilled") == "cloud-factory.dev.order.fulfilled.v1"
    assert topic_for("order.fulfilled", env="prod", major=2) == "cloud-factory.prod.order.fulfilled.v2"
    assert dlq_topic_for("billing.refund-requested") == "cloud-factory.dev.billing.refund-requested.v1.dlq"


def test_all_versions_share_one_topic() -> None:
    for version in catalog["order.created"].versions:
        event = example_event("order.created", version)
        assert topic_for(event.event_type) == "cloud-factory.dev.order.created.v1"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("order.shipped",), "eventType"),
        (("order.created", "Prod"), "env"),
        (("order.created", "a.b"), "env"),
        (("order.created", "dev", 0), "major"),
        (("order.created", "dev", True), "major"),
    ],
)
def test_topic_for_rejects_bad_input(args: tuple, field: str) -> None:
    with pytest.raises(ContractError) as info:
        topic_for(*args)
    assert info.value.field == field


def test_unknown_type_error_class() -> None:
    with pytest.raises(UnknownEventTypeError):
        dlq_topic_for("nope.nope")


def test_parse_topic_inverts_topic_for() -> None:
    for event_type in catalog:
        assert parse_topic(topic_for(event_type, "staging")) == ("staging", event_type, 1, False)
        assert parse_topic(dlq_topic_for(event_type, "staging")).dlq is True
    for bad in ("orders", "cloud-factory.dev.order.created", "cloud-factory.dev.order.created.v1.dead", 7):
        with pytest.raises(ContractError):
            parse_topic(bad)  # type: ignore[arg-type]


def test_all_topics_and_subscriptions() -> None:
    topics = all_topics("dev")
    assert len(topics) == 98 and len(set(topics)) == 98
    assert len(all_topics("dev", dlq=False)) == 49
    assert len(subscription_topics("notification")) == 24
    assert "cloud-factory.dev.provisioning.completed.v1" in subscription_topics("billing")


def test_message_key_is_the_correlation_id() -> None:
    event = example_event("order.fulfilled")
    assert message_key(event) == str(event.correlation_id).encode()


def test_cloudevent_headers_mirror_the_envelope() -> None:
    event = example_event("provisioning.completed")
    headers = dict(cloudevent_headers(event))
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == str(event.event_id).encode()
    assert headers["ce_type"] == b"provisioning.completed"
    assert headers["ce_source"] == b"/cloud-factory/provisioning-service"
    assert headers["ce_time"] == b"2025-07-01T12:00:00Z"
    assert headers["ce_correlationid"] == str(event.correlation_id).encode()
    assert headers["ce_causationid"] == str(event.causation_id).encode()
    assert headers["ce_tenantid"] == b"acme-corp"
    assert headers["ce_dataschema"] == b"urn:cloud-factory:events:provisioning.completed:v3"
    first = dict(cloudevent_headers(example_event("order.created")))
    assert "ce_causationid" not in first  # CloudEvents attributes cannot be null


def _record(event_type: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    from schemas import Keyring, build_record, catalog

    publisher = catalog[event_type].publisher
    record = build_record(example_event(event_type), Keyring.parse(f"{publisher}/k1:s").as_signer(publisher))
    return record.key, record.value, record.headers


def test_stock_cloudevents_core_kafka_binding_reads_our_record() -> None:
    from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
    from cloudevents.core.formats.json import JSONFormat

    key, value, headers = _record("order.fulfilled")
    event = from_binary(KafkaMessage(headers=dict(headers), key=key, value=value), JSONFormat())
    attributes = event.get_attributes()
    assert attributes["specversion"] == "1.0"
    assert attributes["type"] == "order.fulfilled"
    assert attributes["source"] == "/cloud-factory/order-service"
    assert attributes["id"] == "5b0d6c1e-2f3a-4b5c-8d6e-7f8091a2b3c4"
    assert attributes["time"] == dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert event.get_extension("tenantid") == "acme-corp"
    assert event.get_extension("correlationid") == "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    assert event.get_extension("partitionkey") == key.decode()
    assert event.get_data()["eventType"] == "order.fulfilled"  # the data is our envelope


def test_stock_cloudevents_v1_kafka_binding_reads_our_record() -> None:
    from cloudevents.v1.kafka import KafkaMessage, from_binary

    key, value, headers = _record("billing.invoice-created")
    event = from_binary(KafkaMessage(dict(headers), key, value))
    assert event["type"] == "billing.invoice-created"
    assert event["id"] == "5b0d6c1e-2f3a-4b5c-8d6e-7f8091a2b3c4"
    assert event["causationid"] == "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"
    assert event.data["data"]["invoiceNumber"] == "INV-2025-000042"
