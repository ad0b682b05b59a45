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
