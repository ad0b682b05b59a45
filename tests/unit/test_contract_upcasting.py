"""Records old producers still send (fixtures) are read as the newest version, with sensible defaults."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from schemas import ContractError, catalog, decode, encode, upcast
from schemas.examples import example_event
from schemas.payloads._base import BillingCycle, ResourceKind
from schemas.payloads.billing import BillingRefundRequestedV3, RefundInitiator, RefundReason
from schemas.payloads.identity import IdentityApiKeyCreatedV2
from schemas.payloads.order import CompensationStep, OrderChannel, OrderCompensationFailedV2, OrderCreatedV3
from schemas.payloads.provisioning import ProvisioningCompletedV3

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def test_there_are_v1_and_v2_fixtures_for_every_evolved_type() -> None:
    evolved = [t for t, e in catalog.items() if len(e.versions) > 1]
    assert len(evolved) >= 2
    for event_type in evolved:
        for version in catalog[event_type].versions[:-1]:
            raw = _fixture(f"{event_type}.{version}")
            assert json.loads(raw)["version"] == version
            assert decode(raw, upcast=False).version == version


def test_order_created_v1_becomes_v3() -> None:
    raw = _fixture("order.created.v1")
    event = decode(raw)
    assert event.version == "v3"
    data = event.data
    assert isinstance(data, OrderCreatedV3)
    assert len(data.lines) == 1
    line = data.lines[0]
    assert (line.plan_id, line.quantity) == ("vm-standard-2", 3)
    assert (line.amount.amount_minor, line.amount.currency) == (5997, "USD")
    assert data.total == data.subtotal
    assert data.total.amount_minor == 5997 and data.tax.amount_minor == 0 and data.tax.currency == "USD"
    assert data.billing_cycle is BillingCycle.MONTHLY and data.channel is OrderChannel.WEB
    assert data.promotion_code is None
    original = json.loads(raw)
    assert str(event.event_id) == original["eventId"] and event.tenant_id == original["tenantId"]
    assert str(data.order_id) == original["data"]["orderId"] and data.region == "us-east-1"


def test_order_created_v2_becomes_v3_keeping_lines_and_currency() -> None:
    event = decode(_fixture("order.created.v2"))
    data = event.data
    assert isinstance(data, OrderCreatedV3)
    assert [line.plan_id for line in data.lines] == ["vm-standard-4", "bucket-1tb"]
    assert data.total.currency == data.tax.currency == "EUR"
    assert data.total.amount_minor == 6700 and data.tax.amount_minor == 0
    # The v2 fixture was written with a +01:00 offset; the envelope reads it as UTC.
    assert event.occurred_at.isoformat() == "2024-11-02T16:45:00+00:00"


def test_provisioning_completed_v1_becomes_v3() -> None:
    data = decode(_fixture("provisioning.completed.v1")).data
    assert isinstance(data, ProvisioningCompletedV3)
    assert [r.resource_id for r in data.resources] == [
        UUID("aa11bb22-cc33-4d44-8e55-ff6677889900"),
        UUID("bb22cc33-dd44-4e55-9f66-007788990011"),
    ]
    assert {r.kind for r in data.resources} == {ResourceKind.VM}
    assert {r.region for r in data.resources} == {"us-east-1"}
    assert data.resources[0].name == "vm-aa11bb22"
    assert data.endpoints == [] and data.attempts == 1


def test_provisioning_completed_v2_becomes_v3() -> None:
    data = decode(_fixture("provisioning.completed.v2")).data
    assert isinstance(data, ProvisioningCompletedV3)
    assert [(r.kind, r.name, r.region) for r in data.resources] == [
        (ResourceKind.VM, "app-1", "eu-central-1"),
        (ResourceKind.BUCKET, "assets", "eu-central-1"),
    ]


def test_refund_requested_v1_becomes_v3() -> None:
    data = decode(_fixture("billing.refund-requested.v1")).data
    assert isinstance(data, BillingRefundRequestedV3)
    assert (data.amount.amount_minor, data.amount.currency) == (5997, "USD")
    assert data.reason is RefundReason.ORDER_CANCELLED  # "Order cancelled" was a fixed v1 saga string
    assert data.note == "Order cancelled"
    assert data.initiated_by is RefundInitiator.SAGA
    assert data.idempotency_key == f"refund:{data.order_id}:{data.payment_id}"


def test_refund_requested_v2_becomes_v3() -> None:
    event = decode(_fixture("billing.refund-requested.v2"))
    data = event.data
    assert isinstance(data, BillingRefundRequestedV3)
    assert data.reason is RefundReason.PARTIAL_DELIVERY and data.note.startswith("Bucket quota")
    assert data.amount.currency == "EUR"
    # Redelivery of the same old record yields the same idempotency key.
    assert decode(_fixture("billing.refund-requested.v2")).data.idempotency_key == data.idempotency_key


def test_compensation_failed_v1_becomes_v2_listing_its_one_failed_step() -> None:
    raw = _fixture("order.compensation-failed.v1")
    event = decode(raw)
    assert event.version == "v2"
    data = event.data
    assert isinstance(data, OrderCompensationFailedV2)
    assert data.failed_step is CompensationStep.DEPROVISION_RESOURCES
    assert data.failed_steps == [CompensationStep.DEPROVISION_RESOURCES]
    # A v1 producer named the later failures only in the text: it is kept verbatim, not parsed.
    original = json.loads(raw)
    assert data.reason == original["data"]["reason"] and "refund_payment" in data.reason
    assert data.completed_steps == [] and data.requires_manual_action is True
    assert str(event.event_id) == original["eventId"] and str(event.causation_id) == original["causationId"]
    assert json.loads(encode(event))["data"]["failedSteps"] == ["deprovision_resources"]


def test_compensation_failed_v1_keeps_its_completed_steps() -> None:
    document = json.loads(_fixture("order.compensation-failed.v1"))
    document["data"].update(failedStep="refund_payment", completedSteps=["deprovision_resources"])
    data = decode(json.dumps(document).encode()).data
    assert data.failed_steps == [CompensationStep.REFUND_PAYMENT]
    assert data.completed_steps == [CompensationStep.DEPROVISION_RESOURCES]


@pytest.mark.parametrize(
    ("failed_steps", "problem"),
    [
        ([], "at least 1"),
        (["refund_payment", "deprovision_resources"], "start with failedStep"),
        (["deprovision_resources", "deprovision_resources"], "each undo once"),
    ],
)
def test_compensation_failed_v2_lists_the_first_failure_first_and_each_once(
    failed_steps: list[str], problem: str
) -> None:
    document = json.loads(encode(example_event("order.compensation-failed", "v2")))
    assert document["data"]["failedStep"] == "deprovision_resources"
    document["data"]["failedSteps"] = failed_steps
    with pytest.raises(ContractError) as info:
        decode(json.dumps(document).encode())
    assert info.value.field in {"data", "data.failedSteps"} and problem in info.value.reason


def test_unknown_free_text_reason_maps_to_other() -> None:
    document = json.loads(_fixture("billing.refund-requested.v1"))
    document["data"]["reason"] = "customer was unhappy"
    data = decode(json.dumps(document).encode()).data
    assert data.reason is RefundReason.OTHER and data.note == "customer was unhappy"


def test_old_record_is_validated_against_its_own_schema_first() -> None:
    document = json.loads(_fixture("order.created.v1"))
    document["data"]["total"] = {"amountMinor": 1, "currency": "USD"}  # a v3 field in a v1 record
    with pytest.raises(ContractError) as info:
        decode(json.dumps(document).encode())
    assert info.value.field in {"data.totalCents", "data.total"}


def test_upcast_is_deterministic_and_re_encodes_as_latest() -> None:
    raw = _fixture("order.created.v1")
    first, second = decode(raw), decode(raw)
    assert first == second
    assert decode(encode(first)) == first
    assert json.loads(encode(first))["version"] == "v3"


def test_upcast_function_on_envelopes() -> None:
    old = example_event("provisioning.completed", "v1")
    new = upcast(old)
    assert new.version == "v3" and new.event_id == old.event_id
    assert upcast(new) is new


def test_failing_upcaster_surfaces_as_contract_error() -> None:
    entry = catalog["order.created"]
    original = entry.upcast_chains

    def broken(_old: object) -> object:
        raise RuntimeError("bug")

    # CatalogEntry is frozen; swap the chain for this test only.
    object.__setattr__(entry, "upcast_chains", {**original, "v2": (broken,)})
    try:
        with pytest.raises(ContractError) as info:
            decode(_fixture("order.created.v2"))
        assert info.value.field == "data" and "RuntimeError" in info.value.reason
    finally:
        object.__setattr__(entry, "upcast_chains", original)
    assert decode(_fixture("order.created.v2")).version == "v3"


def test_api_key_created_v1_becomes_v2_without_a_hash() -> None:
    """A v1 key never carried its secret's hash: upcast, it is known but cannot be checked."""
    raw = _fixture("identity.api-key-created.v1")
    event = decode(raw)
    assert event.version == "v2"
    data = event.data
    assert isinstance(data, IdentityApiKeyCreatedV2)
    assert data.secret_sha256 is None
    original = json.loads(raw)["data"]
    assert (str(data.api_key_id), data.prefix, [str(s) for s in data.scopes]) == (
        original["apiKeyId"], original["prefix"], original["scopes"])
    assert json.loads(encode(event))["data"]["secretSha256"] is None


def test_api_key_created_v2_refuses_a_hash_that_is_no_sha256() -> None:
    document = json.loads(_fixture("identity.api-key-created.v1"))
    document.update(version="v2")
    document["data"]["secretSha256"] = "cfk_1a2b3c4d_the-secret-itself"
    with pytest.raises(ContractError) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.field == "data.secretSha256"
