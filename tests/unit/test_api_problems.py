"""An unexpected failure inside the API is a bare 500 problem: logged with its traceback, but no
trace, path or exception text in the response."""

from __future__ import annotations

import logging

from starlette.testclient import TestClient

from edge.api.app import ApiConfig, create_app


def test_an_unexpected_failure_is_a_500_problem_without_a_trace(caplog) -> None:
    # No database behind the key store: authenticating a well-formed key fails unexpectedly.
    app = create_app(ApiConfig(engine=None, client=object()))  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as http:
        answer = http.get("/v1/orders/6f1d2c3b-4a59-4e8f-9d70-1a2b3c4d5e6f",
                          headers={"Authorization": "Bearer cfk_1a2b3c4d_" + "s" * 32})
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["title"] == "Internal server error" and body["instance"].startswith("urn:uuid:")
    assert "Traceback" not in answer.text and "AttributeError" not in answer.text and ".py" not in answer.text
    logged = [r for r in caplog.records if body["instance"].removeprefix("urn:uuid:") in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the operator has the traceback


def test_a_declared_body_over_the_limit_is_refused_before_the_app(caplog) -> None:
    app = create_app(ApiConfig(engine=None, client=object(), max_body_bytes=1024))  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/v1/orders", content=b"{" + b" " * 2048 + b"}",
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["detail"].endswith("limit of 1024 bytes")


def test_a_caller_without_a_key_learns_nothing_about_its_body() -> None:
    app = create_app(ApiConfig(engine=None, client=object()))  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/v1/orders", json={"price": 0})
        bad_id = http.get("/v1/orders/not-a-uuid")
    assert answer.status_code == bad_id.status_code == 401
    assert "price" not in answer.text and "planId" not in answer.text
