"""Turn pydantic's `ValidationError` into one `ContractError` that names the wire field.

The codec validates through a union tagged by `eventType` then `version`; pydantic puts those tags into
error locations, so they are stripped here to give the plain wire path (`data.total.currency`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from schemas._internal.errors import ContractError, UnknownEventTypeError, UnsupportedVersionError

__all__ = ["contract_error_from"]

_MAX_REASON = 300


def contract_error_from(
    exc: ValidationError, tags: Mapping[str, Sequence[str]] | None = None, *, python_names: bool = False
) -> ContractError:
    """The first problem of `exc` as a ContractError; `tags` maps event type → versions for loc stripping.

    `python_names`: the input was Python keyword arguments (builders), so report snake_case locations
    under their wire (camelCase) names; wire input keeps its locations verbatim.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=True)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return ContractError("invalid record")
    first = errors[0]
    error = _one(first, tags or {}, python_names)
    if len(errors) > 1:
        more = len(errors) - 1
        error = type(error)(
            f"{error.reason} (and {more} more problem{'s' if more > 1 else ''})", field=error.field
        )
    return error


def _one(error: ErrorDetails, tags: Mapping[str, Sequence[str]], python_names: bool) -> ContractError:
    kind = error["type"]
    loc = list(error["loc"])
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    msg = _clean(error["msg"])
    if kind == "json_invalid":
        return ContractError(f"malformed JSON: {_clip(str(ctx.get('error', msg)))}")
    at_root = not loc
    if kind == "union_tag_invalid":
        tag = _clip(str(ctx.get("tag")), 60)
        if at_root:
            return UnknownEventTypeError(f"unknown event type {tag!r}", field="eventType")
        expected = ", ".join(tags.get(str(loc[0]), ())) or "none"
        return UnsupportedVersionError(
            f"unsupported version {tag!r} of {loc[0]} (known: {expected})", field="version"
        )
    if kind == "union_tag_not_found":
        return ContractError("field required", field="eventType" if at_root else "version")
    if at_root and kind in {"dict_type", "model_type", "model_attributes_type"}:
        return ContractError("a record must be a JSON object")
    if loc and isinstance(loc[0], str) and loc[0] in tags:
        versions = tags[loc.pop(0)]
        if len(versions) > 1 and loc and loc[0] in versions:
            loc.pop(0)
    if loc == ["version"] and kind == "literal_error":  # single-version types have no version tag
        return UnsupportedVersionError(f"unsupported version: {msg}", field="version")
    if python_names:
        loc = [to_camel(part) if isinstance(part, str) and "_" in part else part for part in loc]
    field = ".".join(str(part) for part in loc) or None
    return ContractError(_clip(msg), field=field)


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _clip(text: str, limit: int = _MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
