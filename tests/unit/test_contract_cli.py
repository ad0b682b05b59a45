"""`cloud-factory events …` commands, driven through Typer's test runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cloud_factory.cli.events import app

KEYS = "order/k2:cli-secret-2,order/k1:cli-secret-1,billing/b1:cli-secret-b,notification/n1:cli-secret-n"


@pytest.fixture()
def run():
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), input=stdin, env=env)

    return invoke


def test_list_shows_matrix_and_counts(run) -> None:
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "Cloud Factory events (49)" in result.output
    assert "provisioning.deprovision-failed" in result.output
    summary = {
        line.split("│")[1].strip(): line.split("│")[2:4]
        for line in result.output.splitlines()
        if line.count("│") == 4
    }
    assert [c.strip() for c in summary["notification"]] == ["2", "24"]
    assert [c.strip() for c in summary["order"]] == ["11", "5"]


def test_list_json_filtered_by_publisher(run) -> None:
    result = run("list", "--json", "--publisher", "order")
    rows = json.loads(result.output)
    assert len(rows) == 11 and rows[-1]["eventType"] == "billing.refund-requested"
    assert rows[0]["topic"] == "cloud-factory.dev.order.created.v1"


def test_schema_command(run) -> None:
    latest = json.loads(run("schema", "order.created").output)
    assert latest["$id"].endswith("order.created:v3")
    old = json.loads(run("schema", "order.created", "--version", "v1").output)
    assert "totalCents" in json.dumps(old)
    bad = run("schema", "order.created", "--version", "v9")
    assert bad.exit_code == 1 and "v9" in bad.output
    assert run("schema", "order.shipped").exit_code == 1


def test_asyncapi_command(run) -> None:
    document = json.loads(run("asyncapi").output)
    assert document["asyncapi"] == "3.1.0" and len(document["channels"]) == 98
    yaml_out = run("asyncapi", "--format", "yaml")
    assert yaml_out.exit_code == 0 and yaml_out.output.startswith("asyncapi: 3.1.0")


def test_topics_command(run) -> None:
    lines = run("topics", "--env", "prod", "--no-dlq").output.split()
    assert len(lines) == 49 and lines[0] == "cloud-factory.prod.order.created.v1"


def test_sign_then_verify_round_trip(run) -> None:
    example = run("example", "order.created", "--version", "v1").output
    signed = run("sign", "--keys", KEYS, stdin=example)
    assert signed.exit_code == 0, signed.output
    record = json.loads(signed.output)
    assert record["topic"] == "cloud-factory.dev.order.created.v1"
    assert record["headers"]["x-cf-key-id"] == "k2"
    assert "cli-secret" not in signed.output
    verified = run("verify", stdin=signed.output,
                   env={"CF_SIGNING_KEYS": "order/k3:new,order/k2:cli-secret-2"})
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.output)
    assert report["signature"] == "ok" and report["version"] == "v1" and report["decodedVersion"] == "v3"
    assert report["signer"] == "order" and report["publisher"] == "order"


def test_verify_rejects_tampering_in_production_and_warns_in_development(run) -> None:
    signed = run("sign", "--keys", KEYS, stdin=run("example", "billing.invoice-paid").output).output
    record = json.loads(signed)
    record["value"] = record["value"].replace("acme-corp", "evil-corp")
    tampered = json.dumps(record)
    rejected = run("verify", "--keys", KEYS, stdin=tampered)
    assert rejected.exit_code == 1 and json.loads(rejected.output)["signature"] == "mismatch"
    warned = run("verify", "--keys", KEYS, "--mode", "development", stdin=tampered)
    assert warned.exit_code == 0 and json.loads(warned.output)["eventType"] == "billing.invoice-paid"


def test_verify_reports_contract_errors(run) -> None:
    value = json.dumps({"eventType": "order.created", "version": "v7"})
    from schemas import Keyring

    headers = {k: v.decode() for k, v in Keyring.parse(KEYS).as_signer("order").sign(value.encode())}
    result = run("verify", "--keys", KEYS, stdin=json.dumps({"value": value, "headers": headers}))
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["field"] == "version" and report["errorClass"] == "UnsupportedVersionError"


def test_sign_rejects_invalid_events(run) -> None:
    result = run("sign", "--keys", KEYS, stdin='{"eventType": "order.created"}')
    assert result.exit_code == 2
    assert run("sign", "--keys", KEYS, stdin="not json").exit_code == 1
    assert run("sign", "--keys", "no-colon", stdin=run("example", "order.created").output).exit_code == 1
    no_key = run("sign", "--keys", KEYS, "--as", "support", stdin=run("example", "order.created").output)
    assert no_key.exit_code == 1 and "no signing key of service support" in no_key.output


def test_a_record_signed_by_a_service_that_does_not_publish_the_type_is_refused(run) -> None:
    example = run("example", "billing.refund-completed").output
    forged = run("sign", "--keys", KEYS, "--as", "notification", stdin=example)
    assert forged.exit_code == 0 and "published by billing, not notification" in forged.output
    record = forged.output[forged.output.index("{"):]
    assert json.loads(record)["headers"]["x-cf-key-id"] == "n1"
    refused = run("verify", "--keys", KEYS, stdin=record)
    assert refused.exit_code == 1
    assert "published by billing, but the record is signed by notification (key n1)" in refused.output
    warned = run("verify", "--keys", KEYS, "--mode", "development", stdin=record)
    assert warned.exit_code == 0 and '"signer": "notification"' in warned.output
    genuine = run("sign", "--keys", KEYS, stdin=example)  # default: as the catalog publisher
    assert json.loads(genuine.output)["headers"]["x-cf-key-id"] == "b1"
    assert run("verify", "--keys", KEYS, stdin=genuine.output).exit_code == 0


def test_keygen_prints_entries_that_work(run) -> None:
    hmac_line = run("keygen", "--service", "billing", "--key-id", "b9").output.strip()
    assert hmac_line.startswith("billing/b9:")
    ed = run("keygen", "--service", "provisioning", "--algorithm", "ed25519").output.split()
    assert len(ed) == 2 and ":ed25519:" in ed[0] and ":ed25519-public:" in ed[1]
    signed = run("sign", "--keys", ed[0], stdin=run("example", "provisioning.completed").output)
    assert json.loads(signed.output)["headers"]["x-cf-signature"].startswith("ed25519=")
    assert run("verify", "--keys", ed[1], stdin=signed.output).exit_code == 0
    assert run("keygen", "--service", "nobody").exit_code == 2


def test_no_keys_configured_is_one_line_saying_what_to_do(run, tmp_path) -> None:
    env = {"CF_SIGNING_KEYS": "", "CF_STATE_DIR": str(tmp_path)}
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        result = run("sign", stdin=run("example", "order.created").output, env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert ("no signing keys: run `cloud-factory stack up`" in result.output
            and "Traceback" not in result.output)


def test_generate_check_reports_fresh_files(run) -> None:
    result = run("generate", "--check")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
