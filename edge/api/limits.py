"""The request size limit, enforced before any handler or parser sees the body: a declared
`Content-Length` over the limit is refused at once, and a body streamed without one is counted and
cut off at the limit, never read further (413 problem either way)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    """ASGI middleware: requests whose body exceeds `max_bytes` get a 413 problem."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, send)
            return
        seen = 0
        over = False

        async def counted() -> dict[str, Any]:
            # Over the limit, the app gets an empty, final body (it answers whatever it answers to
            # that), and `answer` replaces its response with the 413.
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        refused = False

        async def answer(message: dict[str, Any]) -> None:
            nonlocal refused
            if not over:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(scope, send)

        await self.app(scope, counted, answer)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        body = json.dumps({
            "type": "https://cloud-factory.example/problems/content-too-large",
            "title": "Content too large",
            "status": 413,
            "detail": f"the request body is over the limit of {self.max_bytes} bytes",
            "instance": scope.get("path", ""),
        }).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
