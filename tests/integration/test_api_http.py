"""The HTTP order API with a real HTTP client against the real server, stack and saga: API keys made
by Identity reach the API only as events; missing, wrong, revoked, read-only, old (v1) and foreign
keys are refused; an Idempotency-Key never yields a second order; bad input is a problem document
naming the field; bodies over the limit and bursts over a key's rate are refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import schemas
from core.db import engine_for
from core.settings import Settings
from edge.api.keys import KeyProjection, KeyStore
from messaging.wiring import keyring_from, producer_from
from services.order.flow import read_flow
from tests.support.api_harness import ApiHarness, IssuedKey
from tests.support.hostile_support import capture, captured_where, committed_past, dead_letter_of, resend

pytestmark = pytest.mark.stack

ORDER = {"planId": "vm-small-1", "region": "eu-west-1", "payment": {"outcome": "authorized"}}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"


@pytest.fixture(scope="module")
async def api(stack, settings: Settings) -> AsyncIterator[ApiHarness]:
    async with ApiHarness(settings) as running:
        yield running


@pytest.fixture(scope="module")
async def writer(api: ApiHarness) -> IssuedKey:
    return await api.issue_key("a")


def _problem(answer, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    assert "Traceback" not in answer.text and 'File "' not in answer.text
    return body


async def _settle(api: ApiHarness, key: IssuedKey, order_id: str, *, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    async with api.client() as http:
        while True:
            body = (await http.get(f"/v1/orders/{order_id}", headers=key.headers)).json()
            if body["status"] in {"delivered", "compensated", "cancelled", "payment_failed"}:
                return body
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.3)


async def test_no_key_a_malformed_one_and_a_wrong_secret_are_401(api: ApiHarness, writer: IssuedKey) -> None:
    wrong = writer.key.secret[:-4] + ("AAAA" if not writer.key.secret.endswith("AAAA") else "BBBB")
    async with api.client() as http:
        missing = _problem(await http.post("/v1/orders", json=ORDER), 401)
        assert "no API key" in missing["detail"]
        malformed = _problem(await http.get(f"/v1/orders/{uuid.uuid4()}",
                                            headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)
        assert "malformed" in malformed["detail"]
        answer = await http.post("/v1/orders", json=ORDER, headers={"Authorization": f"Bearer {wrong}"})
        assert "wrong secret" in _problem(answer, 401)["detail"]
        assert answer.headers["www-authenticate"].startswith("Bearer")
        unknown = "cfk_00000000_" + "x" * 32
        assert "unknown" in _problem(await http.get(f"/v1/orders/{uuid.uuid4()}",
                                                    headers={"Authorization": f"Bearer {unknown}"}),
                                     401)["detail"]


async def test_an_order_placed_with_a_key_is_delivered_and_the_key_is_its_actor(
        api: ApiHarness, writer: IssuedKey, settings: Settings) -> None:
    since = int(time.time() * 1000) - 1000
    async with api.client() as http:
        answer = await http.post("/v1/orders", json=ORDER, headers=writer.headers)
    assert answer.status_code == 201, answer.text
    placed = answer.json()
    assert answer.headers["location"] == f"/v1/orders/{placed['orderId']}"
    assert placed["tenantId"] == writer.tenant_id
    final = await _settle(api, writer, placed["orderId"])
    assert final["status"] == "delivered" and final["step"]
    assert [e["eventType"] for e in final["timeline"] if e["direction"] == "out"][:1] == ["order.created"]
    assert final["compensation"]["owed"] == [] or final["compensation"]["summary"]
    records = await asyncio.to_thread(read_flow, settings, placed["correlationId"],
                                      ["order.created", "order.fulfilled"], since)
    assert {r.envelope.event_type for r in records} == {"order.created", "order.fulfilled"}
    for record in records:
        assert record.envelope.actor == schemas.Actor(id=str(writer.key.api_key_id),
                                                      type=schemas.ActorType.API_KEY)


async def test_a_retried_request_with_its_idempotency_key_is_the_same_order(
        api: ApiHarness, writer: IssuedKey) -> None:
    headers = {**writer.headers, "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    async with api.client() as http:
        first, second = await asyncio.gather(http.post("/v1/orders", json=ORDER, headers=headers),
                                             http.post("/v1/orders", json=ORDER, headers=headers))
        third = await http.post("/v1/orders", json=ORDER, headers=headers)
        other = await http.post("/v1/orders", json={**ORDER, "planId": "vm-large-4"}, headers=headers)
    assert sorted(a.status_code for a in (first, second)) == [200, 201], [first.text, second.text]
    ids = {a.json()["orderId"] for a in (first, second, third)}
    assert len(ids) == 1, ids
    assert third.status_code == 200 and third.headers["idempotent-replayed"] == "true"
    body = _problem(other, 422)
    assert body["errors"] == [{"header": "Idempotency-Key", "detail": "reused with another body"}]
    handle = api.saga.client.get_workflow_handle(f"order-{writer.tenant_id}-{ids.pop()}")
    history = await handle.fetch_history()
    started = [e for e in history.events
               if e.WhichOneof("attributes") == "workflow_execution_started_event_attributes"]
    assert len(started) == 1


async def test_a_client_chosen_order_id_cannot_be_placed_twice(api: ApiHarness, writer: IssuedKey) -> None:
    body = {**ORDER, "orderId": str(uuid.uuid4())}
    async with api.client() as http:
        assert (await http.post("/v1/orders", json=body, headers=writer.headers)).status_code == 201
        again = _problem(await http.post("/v1/orders", json=body, headers=writer.headers), 409)
    assert body["orderId"] in again["detail"]


async def test_a_read_only_key_cannot_place_or_cancel(api: ApiHarness, writer: IssuedKey) -> None:
    reader = await api.issue_key("a", scopes=("orders:read",))
    async with api.client() as http:
        placed = (await http.post("/v1/orders", json={**ORDER, "payment": None},
                                  headers=writer.headers)).json()
        assert "orders:write" in _problem(await http.post("/v1/orders", json=ORDER, headers=reader.headers),
                                          403)["detail"]
        _problem(await http.post(f"/v1/orders/{placed['orderId']}/cancel", headers=reader.headers), 403)
        seen = await http.get(f"/v1/orders/{placed['orderId']}", headers=reader.headers)
        assert seen.status_code == 200 and seen.json()["status"] == "awaiting_payment", seen.text
        cancelled = await http.post(f"/v1/orders/{placed['orderId']}/cancel", headers=writer.headers)
        assert cancelled.status_code == 202, cancelled.text
        again = _problem(await http.post(f"/v1/orders/{placed['orderId']}/cancel", headers=writer.headers),
                         409)
    assert "cancel" in again["detail"]


async def test_a_key_of_another_tenant_neither_reads_nor_cancels_the_order(
        api: ApiHarness, writer: IssuedKey) -> None:
    foreign = await api.issue_key("b")
    async with api.client() as http:
        placed = (await http.post("/v1/orders", json={**ORDER, "payment": None},
                                  headers=writer.headers)).json()
        path = f"/v1/orders/{placed['orderId']}"
        _problem(await http.get(path, headers=foreign.headers), 404)
        _problem(await http.post(f"{path}/cancel", headers=foreign.headers), 404)
        # The foreign key's own order of the same id is its tenant's, never this one.
        mine = await http.post("/v1/orders", json={**ORDER, "orderId": placed["orderId"], "payment": None},
                               headers=foreign.headers)
        assert mine.status_code == 201 and mine.json()["tenantId"] == foreign.tenant_id
        still = (await http.get(path, headers=writer.headers)).json()
    assert still["status"] == "awaiting_payment" and still["tenantId"] == writer.tenant_id


async def test_a_revoked_key_is_refused_within_seconds(api: ApiHarness) -> None:
    doomed = await api.issue_key("a")
    await asyncio.to_thread(api.identity.revoke_api_key, doomed.key.api_key_id, doomed.user_id, "leaked")
    seconds = await api.wait_until(doomed, lambda status: status == 401, within_s=15)
    async with api.client() as http:
        answer = await http.get(f"/v1/orders/{uuid.uuid4()}", headers=doomed.headers)
    assert "revoked" in _problem(answer, 401)["detail"]
    print(f"revoked key refused {seconds:.2f} s after the revoke command")  # shown with -s
    assert seconds < 15


async def test_a_v1_key_has_no_hash_and_is_refused(api: ApiHarness, settings: Settings) -> None:
    document = json.loads((FIXTURES / "identity.api-key-created.v1.json").read_text())
    prefix = "cfk_" + uuid.uuid4().hex[:8]
    document["data"].update(apiKeyId=str(uuid.uuid4()), prefix=prefix)
    event = schemas.decode(json.dumps(document).encode())  # upcast to v2: no hash
    engine = engine_for(settings.dsn)
    KeyProjection(engine).on_created(event, None)
    with pytest.raises(Exception, match="predates hashed keys"):
        KeyStore(engine).authenticate(f"Bearer {prefix}_" + "s" * 32)


async def test_bad_input_is_a_problem_naming_the_field(api: ApiHarness, writer: IssuedKey) -> None:
    async with api.client() as http:
        unknown_plan = _problem(await http.post("/v1/orders", json={**ORDER, "planId": "vm-huge"},
                                                headers=writer.headers), 422)
        assert unknown_plan["errors"][0]["pointer"] == "#/planId" and "not on sale" in unknown_plan["detail"]
        region = _problem(await http.post("/v1/orders", json={**ORDER, "region": "mars-1"},
                                          headers=writer.headers), 422)
        assert region["errors"][0]["pointer"] == "#/region"
        missing = _problem(await http.post("/v1/orders", json={"region": "eu-west-1"},
                                           headers=writer.headers), 422)
        assert missing["errors"][0]["pointer"] == "#/planId"
        extra = _problem(await http.post("/v1/orders", json={**ORDER, "price": 0},
                                         headers=writer.headers), 422)
        assert extra["errors"][0]["pointer"] == "#/price"
        outcome = _problem(await http.post("/v1/orders", json={**ORDER, "payment": {"outcome": "maybe"}},
                                           headers=writer.headers), 422)
        assert outcome["errors"][0]["pointer"] == "#/payment/outcome"
        garbage = _problem(await http.post("/v1/orders", content=b"{not json", headers={
            **writer.headers, "Content-Type": "application/json"}), 422)
        assert "not valid JSON" in garbage["detail"]
        bad_id = _problem(await http.get("/v1/orders/not-a-uuid", headers=writer.headers), 422)
        assert bad_id["errors"][0] == {"parameter": "order_id", "detail": bad_id["errors"][0]["detail"]}
        bad_key = _problem(await http.post("/v1/orders", json=ORDER,
                                           headers={**writer.headers, "Idempotency-Key": "x" * 200}), 422)
        assert bad_key["errors"][0]["header"] == "Idempotency-Key"
        _problem(await http.get("/v1/nothing-here"), 404)
        _problem(await http.delete("/v1/orders"), 405)


async def test_a_body_over_the_limit_is_413_before_it_is_read(api: ApiHarness, writer: IssuedKey,
                                                                settings: Settings) -> None:
    big = {**ORDER, "planId": "p" * (settings.api_max_body_bytes + 1)}
    async with api.client() as http:
        body = _problem(await http.post("/v1/orders", json=big, headers=writer.headers), 413)
        assert str(settings.api_max_body_bytes) in body["detail"]

        async def chunks():  # no Content-Length: counted as it streams
            for _ in range(settings.api_max_body_bytes // 1000 + 2):
                yield b" " * 1000

        _problem(await http.post("/v1/orders", content=chunks(), headers={
            **writer.headers, "Content-Type": "application/json"}), 413)


async def test_a_burst_over_the_key_s_rate_is_429_with_retry_after(
        api: ApiHarness, settings: Settings) -> None:
    busy = await api.issue_key("a", scopes=("orders:read",))
    quiet = await api.issue_key("a", scopes=("orders:read",))
    async with api.client() as http:
        answers = await asyncio.gather(*(http.get(f"/v1/orders/{uuid.uuid4()}", headers=busy.headers)
                                         for _ in range(settings.api_burst * 2)))
        other = await http.get(f"/v1/orders/{uuid.uuid4()}", headers=quiet.headers)
    limited = [a for a in answers if a.status_code == 429]
    assert limited and len(limited) <= settings.api_burst + 1, [a.status_code for a in answers]
    assert int(limited[0].headers["retry-after"]) >= 1
    assert "rate limit" in _problem(limited[0], 429)["detail"]
    assert other.status_code == 404  # one key's burst spends only its own bucket


async def test_healthz_and_the_committed_openapi_document(api: ApiHarness) -> None:
    async with api.client() as http:
        health = await http.get("/healthz")
        served = (await http.get("/openapi.json")).json()
    assert health.status_code == 200 and health.json() == {"status": "ok", "temporal": "ok", "database": "ok"}
    committed = json.loads(
        (Path(__file__).resolve().parents[2] / "edge" / "api" / "openapi.json").read_text())
    assert served == committed, "run `python -m edge.api.openapi --write` to refresh it"


async def test_a_key_event_signed_by_another_service_never_makes_a_key(
        api: ApiHarness, settings: Settings) -> None:
    """An attacker holding Support's signing key announces a key of its own, claiming Identity."""
    secret = "cfk_" + uuid.uuid4().hex[:8] + "_" + "f" * 32
    prefix = secret[:12]
    envelope = schemas.new_event(
        "identity.api-key-created",
        {"apiKeyId": str(uuid.uuid4()), "userId": str(uuid.uuid4()), "name": "forged", "prefix": prefix,
         "scopes": ["orders:write", "orders:read"],
         "secretSha256": hashlib.sha256(secret.encode()).hexdigest()},
        tenant_id=api.saga.tenant("a"), correlation_id=uuid.uuid4(),
        actor=schemas.Actor(id="identity-service", type=schemas.ActorType.SERVICE),
        producer="identity-service")
    value = schemas.encode(envelope)
    delivery = producer_from(settings, fallback=False).publish_raw(
        schemas.topic_for(envelope.event_type, env=settings.env), key=str(envelope.correlation_id).encode(),
        value=value, headers=keyring_from(settings, "support").sign(value))
    record = capture(settings, delivery.topic, delivery.partition, delivery.offset)
    await asyncio.to_thread(committed_past, settings, api.group_id, record)  # dealt with, not pending
    assert "signed by support" in dead_letter_of(settings, record).reason
    async with api.client() as http:
        answer = await http.get(f"/v1/orders/{uuid.uuid4()}", headers={"Authorization": f"Bearer {secret}"})
    assert "unknown API key" in _problem(answer, 401)["detail"]


async def test_a_replayed_key_creation_does_not_bring_a_revoked_key_back(api: ApiHarness,
                                                                         settings: Settings) -> None:
    doomed = await api.issue_key("a")
    await asyncio.to_thread(api.identity.revoke_api_key, doomed.key.api_key_id, doomed.user_id, "leaked")
    await api.wait_until(doomed, lambda status: status == 401, within_s=15)
    topic = schemas.topic_for("identity.api-key-created", env=settings.env)
    created = await asyncio.to_thread(captured_where, settings, topic,
                                      lambda e: e.data.api_key_id == doomed.key.api_key_id)
    again = await asyncio.to_thread(resend, settings, created)  # byte for byte, as an eavesdropper would
    await asyncio.to_thread(committed_past, settings, api.group_id, again)
    await asyncio.sleep(1.5)  # past the key cache
    async with api.client() as http:
        answer = await http.get(f"/v1/orders/{uuid.uuid4()}", headers=doomed.headers)
    assert "revoked" in _problem(answer, 401)["detail"]
