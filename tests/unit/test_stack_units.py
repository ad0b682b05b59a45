"""Pure pieces of the local stack."""

from __future__ import annotations

import re
import uuid

import pytest

from cloud_factory.stack import kafka


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage tool reads `-t -abc…` as an option; a leading dash is drawn again."""
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # first six bits 62 → "-" in url-safe base64
    fine = uuid.UUID(bytes=b"\x10" + bytes(15))
    draws = iter([dashed, dashed, fine])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka.new_cluster_id()
    assert cluster_id == "EAAAAAAAAAAAAAAAAAAAAA" and next(draws, None) is None


def test_cluster_ids_are_22_url_safe_characters() -> None:
    ids = {kafka.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cluster_id) for cluster_id in ids)


def test_stack_up_writes_one_private_key_per_service_once(tmp_path) -> None:
    import stat

    import schemas
    from core.settings import Settings
    from messaging.signing_keys import ensure_development_keys, load_keyring

    settings = Settings(state_dir=tmp_path / "state", signing_keys="", signing_keys_file=None)
    path = ensure_development_keys(settings)
    assert path == settings.development_keys_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = load_keyring(settings)  # also proves no two services share a secret
    assert set(ring.services()) == set(schemas.Service) and len(ring) == len(schemas.Service)
    first = path.read_text()
    assert ensure_development_keys(settings) == path and path.read_text() == first  # kept, never rotated
    for service in schemas.Service:
        assert ring.as_signer(service).signing_key_id.startswith(f"{service.value}-dev-")
    own = Settings(state_dir=tmp_path / "other", signing_keys="order/k:s", signing_keys_file=None)
    assert ensure_development_keys(own) is None and not own.development_keys_path.exists()
