"""Where a process's signing keys come from, and the development keys the local stack generates.

`CF_SIGNING_KEYS` (entries, comma separated) and `CF_SIGNING_KEYS_FILE` (one entry per line) are read
when set; with neither, the keys `cloud-factory stack up` generated into the state directory. There
is no built-in key: a process with no keys stops with a one-line error saying how to get some.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import schemas
from core.settings import Settings

__all__ = ["SigningKeysError", "ensure_development_keys", "load_keyring"]


class SigningKeysError(RuntimeError):
    """No usable signing keys: the message says which source is wrong and how to fix it."""


def load_keyring(settings: Settings) -> schemas.Keyring:
    """Every key this process knows (all services; bind one with `Keyring.as_signer`)."""
    rings: list[schemas.Keyring] = []
    try:
        if settings.signing_keys.strip():
            rings.append(schemas.Keyring.parse(settings.signing_keys))
        path = settings.signing_keys_file
        if path is None and not rings and settings.development_keys_path.is_file():
            path = settings.development_keys_path
        if path is not None:
            rings.append(schemas.Keyring.from_file_text(_read(path), source=str(path)))
    except schemas.ContractError as exc:
        raise SigningKeysError(f"bad signing keys: {exc.reason}") from None
    ring = schemas.Keyring()
    for part in rings:
        try:
            ring = ring.merged(part)
        except schemas.ContractError as exc:
            raise SigningKeysError(f"bad signing keys: {exc.reason}") from None
    if not len(ring):
        raise SigningKeysError(
            "no signing keys: run `cloud-factory stack up` (it writes development keys to "
            f"{settings.development_keys_path}) or set CF_SIGNING_KEYS / CF_SIGNING_KEYS_FILE")
    return ring


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise SigningKeysError(f"cannot read signing keys file {path}: {exc.strerror or exc}") from None


def ensure_development_keys(settings: Settings) -> Path | None:
    """Write one random HMAC key per service into the state directory (0600) unless the file exists.

    Nothing is written when the process is configured with keys of its own (CF_SIGNING_KEYS or
    CF_SIGNING_KEYS_FILE): those are the keys it must use. Returns the file written or kept."""
    if settings.signing_keys.strip() or settings.signing_keys_file is not None:
        return None
    path = settings.development_keys_path
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Development signing keys of the local stack, one per service (generated; keep private).",
             "# Entries: service/kid:secret — see `cloud-factory events keygen --help`."]
    suffix = secrets.token_hex(3)
    lines += [schemas.generate_entry(service, f"{service.value}-dev-{suffix}") for service in schemas.Service]
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(temporary, path)
    return path
