"""Every error as RFC 9457 problem details (`application/problem+json`), never a stack trace.

Validation errors list each wrong field as a JSON pointer into the request (`#/planId`) or names the
header or path parameter; anything unexpected is logged here with its traceback and answered as a
bare 500 whose `instance` is the request id the log line carries.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["PROBLEM_TYPE", "Problem", "install_problem_handlers", "problem_response"]

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://cloud-factory.example/problems/{slug}"
_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Content too large",
           415: "Unsupported media type",
           422: "Unprocessable content", 429: "Too many requests", 500: "Internal server error",
           503: "Service unavailable", 504: "Gateway timeout"}


class Problem(Exception):
    """Raise to answer with a problem: `status`, one-line `detail`, a `slug` for its type URI, and
    optional `errors` ([{pointer|header|parameter, detail}]) and response `headers`."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None,
                 errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers
        self.slug = slug or _TITLES.get(status, "error").lower().replace(" ", "-")


def problem_response(status: int, detail: str, *, slug: str, instance: str | None = None,
                     errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_TYPE.format(slug=slug), "title": _TITLES.get(status, "Error"),
                            "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def _where(location: tuple[Any, ...]) -> dict[str, str]:
    """A pydantic error location as the problem's field: a JSON pointer into the body, or the header,
    query or path parameter."""
    if not location:
        return {"pointer": "#"}
    kind, rest = location[0], [str(part) for part in location[1:]]
    if kind == "body":
        return {"pointer": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in rest)}
    if kind == "header":
        return {"header": "-".join(w.capitalize() for w in "/".join(rest).replace("_", "-").split("-"))}
    return {"parameter": "/".join(rest)}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, slug=exc.slug, instance=request.url.path,
                                errors=exc.errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            message = str(error.get("msg", "invalid"))
            if error.get("type") == "json_invalid":
                message = "the body is not valid JSON"
            errors.append({**_where(tuple(error.get("loc", ()))), "detail": message})
        first = errors[0] if errors else {"detail": "invalid request"}
        field = first.get("pointer") or first.get("header") or first.get("parameter") or "the request"
        return problem_response(422, f"{field}: {first['detail']}", slug="validation",
                                instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(exc.status_code, detail, slug=_TITLES.get(exc.status_code, "error").lower()
                                .replace(" ", "-"), instance=request.url.path, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = str(uuid.uuid4())
        log.error("request %s %s failed (incident %s)", request.method, request.url.path, incident,
                  exc_info=exc)
        return problem_response(500, "the server failed to handle this request; it has been logged",
                                slug="internal", instance=f"urn:uuid:{incident}")
