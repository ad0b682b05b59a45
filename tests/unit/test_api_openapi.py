"""The committed OpenAPI document is the one the API serves, and it documents the API's promises."""

from __future__ import annotations

import json

from edge.api.openapi import OPENAPI_FILE, openapi_document, render


def test_the_committed_document_is_up_to_date() -> None:
    assert OPENAPI_FILE.read_text(encoding="utf-8") == render(), "run `python -m edge.api.openapi --write`"


def test_the_document_names_auth_problems_and_idempotency() -> None:
    document = openapi_document()
    assert set(document["paths"]) == {"/v1/orders", "/v1/orders/{order_id}", "/v1/orders/{order_id}/cancel",
                                      "/healthz"}
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    place = document["paths"]["/v1/orders"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in place["parameters"])
    for status in ("401", "403", "413", "429", "500"):
        assert "application/problem+json" in place["responses"][status]["content"], status
    assert {"type", "title", "status", "detail"} <= set(
        document["components"]["schemas"]["Problem"]["required"])
    assert json.dumps(document).count("Traceback") == 0
