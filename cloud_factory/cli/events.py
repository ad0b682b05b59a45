"""`cloud-factory events …`: the event catalog, schemas and signing tools.

`sign` and `verify` read JSON on stdin so they compose in shell pipelines::

    cloud-factory events example order.created | cloud-factory events sign | cloud-factory events verify

Keys come from `--keys`, else the process configuration (CF_SIGNING_KEYS, CF_SIGNING_KEYS_FILE, or the
development keys of `stack up`); `keygen` makes new ones.

The contract (`schemas`: pydantic and the whole catalog) and Rich are imported inside the commands;
the options offer their choices from `cloud_factory.choices`, so `--help` loads neither.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cloud_factory.choices import AlgorithmChoice, ServiceChoice, SigningModeChoice

if TYPE_CHECKING:
    from rich.console import Console

    import schemas

app = typer.Typer(
    help="The event contract: catalog, JSON Schemas, AsyncAPI, sign/verify.", no_args_is_help=True
)

KEYS_ENV = "CF_SIGNING_KEYS"
_KEYS_HELP = (f"Keys 'service/kid:secret,…' (a service's first key signs). Defaults to ${KEYS_ENV}, "
              "CF_SIGNING_KEYS_FILE or the stack's development keys.")


def _console() -> Console:
    from rich.console import Console

    # Piped output (CI logs, `| less`) gets a width that fits the whole matrix instead of 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=130)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _keyring(keys: str | None) -> schemas.Keyring:
    import schemas

    if keys is None:
        from core.settings import get_settings
        from messaging.signing_keys import SigningKeysError, load_keyring

        try:
            return load_keyring(get_settings())
        except SigningKeysError as exc:
            raise _fail(str(exc)) from None
    try:
        return schemas.Keyring.parse(keys)
    except schemas.ContractError as exc:
        raise _fail(f"bad keyring: {exc.reason}") from None


def _stdin_json() -> Any:
    raw = sys.stdin.read()
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(f"stdin is not JSON: {exc}") from None


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


@app.command("list")
def list_events(
    domain: Annotated[
        ServiceChoice | None, typer.Option("--publisher", "-p", help="Only events this service publishes.")
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The catalog as a table: publisher (P) and subscribers (S) per service, CF flag, retry profile."""
    from rich.table import Table

    import schemas
    from schemas import Service, catalog

    entries = catalog.published_by(Service(domain)) if domain else catalog.entries()
    if as_json:
        _print_json(
            [
                {
                    "eventType": e.event_type,
                    "publisher": e.publisher.value,
                    "consumers": [c.value for c in e.consumers],
                    "customerFacing": e.customer_facing,
                    "retryProfile": e.retry_profile.value,
                    "versions": list(e.versions),
                    "topic": schemas.topic_for(e.event_type),
                }
                for e in entries
            ]
        )
        return
    table = Table(title=f"Cloud Factory events ({len(entries)})", show_lines=False)
    table.add_column("event type", style="bold", no_wrap=True)
    table.add_column("ver")
    table.add_column("CF")
    table.add_column("retry", no_wrap=True)
    for service in Service:
        table.add_column(service.value[:4], justify="center")
    for e in entries:
        marks = ["P" if e.publisher is s else "S" if s in e.consumers else "" for s in Service]
        table.add_row(
            e.event_type, e.latest_version, "✓" if e.customer_facing else "", e.retry_profile.value, *marks
        )
    summary = Table(title="Pub/sub per service")
    summary.add_column("service", style="bold")
    summary.add_column("publishes", justify="right")
    summary.add_column("subscribes", justify="right")
    for service in Service:
        summary.add_row(
            service.value, str(len(catalog.published_by(service))), str(len(catalog.subscriptions(service)))
        )
    console = _console()
    console.print(table)
    console.print(summary)


@app.command()
def schema(
    event_type: str = typer.Argument(..., help="e.g. order.created"),
    version: str | None = typer.Option(None, "--version", "-v", help="vN (default: latest)."),
) -> None:
    """Print the JSON Schema of one event type and version."""
    from schemas import ContractError, catalog
    from schemas._internal.jsonschema import event_schema

    try:
        entry = catalog.require(event_type)
        if version is not None:
            entry.payload_model(version)
    except ContractError as exc:
        raise _fail(str(exc)) from None
    _print_json(event_schema(entry, version))


@app.command()
def example(
    event_type: str = typer.Argument(..., help="e.g. order.created"),
    version: str | None = typer.Option(None, "--version", "-v", help="vN (default: latest)."),
) -> None:
    """Print a valid example envelope (handy input for `sign`)."""
    import schemas
    from schemas import ContractError, catalog
    from schemas._internal.jsonschema import example_envelope

    try:
        entry = catalog.require(event_type)
        envelope = example_envelope(entry, version or entry.latest_version)
    except ContractError as exc:
        raise _fail(str(exc)) from None
    _print_json(json.loads(schemas.encode(envelope)))


@app.command()
def asyncapi(
    fmt: str = typer.Option("json", "--format", "-f", help="json or yaml."),
) -> None:
    """Print the AsyncAPI 3.1 document of the whole catalog."""
    from cloud_factory.exports import runtime_facts
    from schemas import catalog
    from schemas._internal.asyncapi import asyncapi_document

    document = asyncapi_document(catalog, runtime_facts())
    if fmt == "json":
        _print_json(document)
    elif fmt == "yaml":
        try:
            import yaml
        except ImportError:
            raise _fail("yaml output needs PyYAML (pip install pyyaml)") from None
        typer.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)
    else:
        raise typer.BadParameter(f"{fmt!r} is neither json nor yaml", param_hint="'--format'")


@app.command()
def topics(
    env: str = typer.Option("dev", "--env", "-e"),
    dlq: bool = typer.Option(True, "--dlq/--no-dlq", help="Include dead-letter topics."),
) -> None:
    """Print every topic name of an environment, one per line."""
    import schemas

    try:
        names = schemas.all_topics(env, dlq=dlq)
    except schemas.ContractError as exc:
        raise _fail(str(exc)) from None
    typer.echo("\n".join(names))


@app.command()
def sign(
    keys: str | None = typer.Option(None, "--keys", envvar=KEYS_ENV, help=_KEYS_HELP, show_default=False),
    as_service: Annotated[
        ServiceChoice | None,
        typer.Option("--as", help="Sign as this service (default: the event type's catalog publisher)."),
    ] = None,
    env: str = typer.Option("dev", "--env", "-e"),
) -> None:
    """Read an envelope (JSON) on stdin, print the record to produce: topic, key, canonical value, headers.

    Signing as a service that does not publish the type is allowed here (to try a deployment's
    defences) with a warning: every consumer refuses such a record.
    """
    import schemas
    from schemas import ContractError, Service, catalog

    document = _stdin_json()
    try:
        envelope = schemas.decode(json.dumps(document).encode(), upcast=False)
    except ContractError as exc:
        raise _fail(f"invalid event: {exc}", 2) from None
    publisher = catalog.require(envelope.event_type).publisher
    signer = Service(as_service) if as_service else publisher
    try:
        ring = _keyring(keys).as_signer(signer)
    except ContractError as exc:
        raise _fail(str(exc.reason)) from None
    if signer is not publisher:
        typer.echo(f"warning: {envelope.event_type} is published by {publisher.value}, not {signer.value}: "
                   "consumers will refuse this record", err=True)
    value = schemas.encode(envelope)
    headers = ring.sign(value) + schemas.cloudevent_headers(envelope)
    _print_json(
        {
            "topic": schemas.topic_for(envelope.event_type, env),
            "key": schemas.message_key(envelope).decode(),
            "value": value.decode(),
            "headers": {name: header.decode() for name, header in headers},
        }
    )


@app.command()
def verify(
    keys: str | None = typer.Option(None, "--keys", envvar=KEYS_ENV, help=_KEYS_HELP, show_default=False),
    mode: Annotated[
        SigningModeChoice, typer.Option("--mode", help="production rejects, development warns.")
    ] = SigningModeChoice.PRODUCTION,
) -> None:
    """Read a record (as printed by `sign`: value string + headers) on stdin; check signature, signer and
    contract, and print the signer's service.

    Exit 0 when the record would be processed, 1 when its signature or its signer is rejected (the
    message names the signer and the type's catalog publisher), 2 when it breaks the contract.
    """
    import schemas
    from schemas import ContractError, SigningMode, catalog

    document = _stdin_json()
    if not isinstance(document, dict) or not isinstance(document.get("value"), str):
        raise _fail('expected {"value": "<record value>", "headers": {...}}', 2)
    value = document["value"].encode()
    raw_headers = document.get("headers") or {}
    headers = list(raw_headers.items()) if isinstance(raw_headers, dict) else [tuple(h) for h in raw_headers]
    check = _keyring(keys).verify(value, headers)
    report: dict[str, Any] = {"signature": check.status.value, "keyId": check.key_id,
                              "signer": check.service.value if check.service else None}
    if check.signed_at_ms is not None:
        report["signedAtMs"] = check.signed_at_ms
    if check.detail:
        report["detail"] = check.detail
    try:
        schemas.enforce_signature(check, SigningMode(mode))
    except schemas.SignatureError as exc:
        report["error"] = exc.reason
        _print_json(report)
        raise typer.Exit(1) from None
    try:
        original = schemas.decode(value, upcast=False)
        latest = schemas.upcast(original)
    except ContractError as exc:
        report.update(error=exc.reason, field=exc.field, errorClass=type(exc).__name__)
        _print_json(report)
        raise typer.Exit(2) from None
    report.update(
        eventType=original.event_type,
        version=original.version,
        decodedVersion=latest.version,
        publisher=catalog.require(original.event_type).publisher.value,
        producer=original.producer,
        eventId=str(original.event_id),
        correlationId=str(original.correlation_id),
    )
    violation = schemas.signer_violation(original, check)
    if violation is not None:
        report.update(error=violation[1], field=violation[0], errorClass="UnauthorizedSignerError")
        _print_json(report)
        typer.echo(f"rejected: {violation[1]}", err=True)
        if SigningMode(mode) is SigningMode.PRODUCTION:
            raise typer.Exit(1)
        return
    _print_json(report)


@app.command()
def keygen(
    service: Annotated[ServiceChoice, typer.Option("--service", "-s", help="Whose key.")],
    key_id: str | None = typer.Option(None, "--key-id", help="Default: <service>-<date>-<random>."),
    algorithm: Annotated[
        AlgorithmChoice, typer.Option("--algorithm", "-a", help="hmac-sha256 (shared secret) or ed25519.")
    ] = AlgorithmChoice.HMAC_SHA256,
) -> None:
    """Print a new signing key entry for CF_SIGNING_KEYS / CF_SIGNING_KEYS_FILE.

    Ed25519 also prints the public entry: give the private line to the service only and the public line
    to every process that verifies its events (they can then verify but never forge them).
    """
    import datetime as dt
    import secrets

    import schemas
    from schemas import ContractError, Service

    service, algorithm = Service(service), schemas.Algorithm(algorithm)
    kid = key_id or f"{service.value}-{dt.date.today():%Y%m%d}-{secrets.token_hex(2)}"
    try:
        line = schemas.generate_entry(service, kid, algorithm)
        schemas.Keyring.parse(line)
    except ContractError as exc:
        raise _fail(exc.reason, 2) from None
    typer.echo(line)
    if algorithm is schemas.Algorithm.ED25519:
        typer.echo(schemas.public_entry(line))


@app.command()
def generate(
    check: bool = typer.Option(False, "--check", help="Only report stale files; exit 1 if any."),
) -> None:
    """Regenerate the JSON Schema and AsyncAPI files under schemas/generated/."""
    from cloud_factory.exports import runtime_facts
    from schemas import catalog
    from schemas._internal.exports import GENERATED_DIR, stale_files, write_files

    facts = runtime_facts()
    if check:
        stale = stale_files(catalog, facts)
        for path in stale:
            typer.echo(f"stale: {path}")
        if stale:
            raise _fail(f"{len(stale)} generated file(s) out of date; run `cloud-factory events generate`")
        typer.echo("generated files are up to date")
        return
    changed = write_files(catalog, facts)
    typer.echo(f"{len(changed)} file(s) updated under {GENERATED_DIR}")
