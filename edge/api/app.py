"""The HTTP order API: customers' systems place, read and cancel orders with an API key.

Each request is authenticated against the API's own projection of Identity's keys
(`edge.api.keys`), rate-limited per key, checked for its scope and confined to its key's tenant: a
saga's workflow id is made of tenant and order id, so another tenant's order id names no workflow
here and is answered 404, as any unknown order is. The key becomes the actor of every event its
order causes. Orders go through `services.order.api` (Update-with-Start, the saga's own Updates and
queries) — the same doors the CLI uses; this process publishes nothing to Kafka.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Request, Response, Security
from fastapi.security import HTTPBearer
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from sqlalchemy import Engine, text
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from edge.api.idempotency import IdempotencyKeys
from edge.api.keys import ApiPrincipal, AuthenticationFailed, KeyStore
from edge.api.limits import BodySizeLimit
from edge.api.models import CompensationOut, Health, OrderIn, OrderOut, PaymentOutcome, TimelineOut
from edge.api.problems import Problem, install_problem_handlers
from edge.api.ratelimit import RateLimiter
from services.order.api import OrderCommandRefused, cancel_order, new_order, place_order
from workflows.contracts import order_workflow_id
from workflows.order_fulfillment import ORDER_TASK_QUEUE, OrderFulfillmentWorkflow

__all__ = ["ApiConfig", "create_app"]

API_VERSION = "1.0.0"
_QUERY_TIMEOUT_S = 10.0
_IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,128}$"
_bearer = HTTPBearer(auto_error=False, bearerFormat="cfk_<prefix>_<secret>",
                     description="An API key created with `cloud-factory identity create-api-key`.")


@dataclasses.dataclass
class ApiConfig:
    """What the app needs: the projection's engine, the Temporal client (connected at start-up by
    `connect`, unless given), limits and the saga's task queue."""

    engine: Engine | None
    connect: Any = None  # async () -> Client
    client: Client | None = None
    rate_per_s: float = 10.0
    burst: int = 20
    max_body_bytes: int = 16384
    key_cache_s: float = 1.0
    task_queue: str = ORDER_TASK_QUEUE


_PROBLEM = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, **_PROBLEM}
    for status, what in ((401, "No API key, a wrong one, a revoked or expired one"),
                         (403, "The key lacks the scope"), (413, "The body is over the size limit"),
                         (422, "A field, header or parameter is wrong (`errors` names each)"),
                         (429, "The key's rate limit; wait `Retry-After` seconds"),
                         (500, "The server failed (no details leave it)"))
}


# FastAPI ≥ 0.165 opens a SERVER span of its own per request, continued from the request's headers: under
# the tracing middleware that wraps the app (outside FastAPI's stack, where it does not look for it)
# every request would show as two server spans, siblings under the caller's span. The middleware owns
# the request's telemetry (it also covers the body-size limit's answers), so FastAPI's is off — as
# FastAPI turns it off itself when it finds the middleware inside its own stack.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
)


def create_app(config: ApiConfig) -> Any:
    """The ASGI application: FastAPI inside the body-size limit, inside the tracing middleware that
    continues (or starts) the request's trace."""
    keys = KeyStore(config.engine, cache_s=config.key_cache_s)
    limiter = RateLimiter(config.rate_per_s, config.burst)
    idempotency = IdempotencyKeys(config.engine)
    state: dict[str, Client] = {}
    if config.client is not None:
        state["client"] = config.client

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if "client" not in state:
            state["client"] = await config.connect()
        yield

    app = FastAPI(
        title="Cloud Factory order API",
        version=API_VERSION,
        description="Place, read and cancel orders of cloud services. Authenticate with an API key "
        "(`Authorization: Bearer cfk_…`); each key acts for one tenant, within its scopes "
        "(`orders:write`, `orders:read`) and its rate limit. Errors are RFC 9457 problem details.",
        lifespan=lifespan,
        responses=_ERRORS,
        **_NO_NATIVE_TELEMETRY,
    )
    install_problem_handlers(app)

    def authorize(request: Request, scope: str) -> ApiPrincipal:
        try:
            principal = keys.authenticate(request.headers.get("authorization"))
        except AuthenticationFailed as exc:
            raise Problem(401, str(exc), slug="unauthorized",
                          headers={"WWW-Authenticate": 'Bearer realm="cloud-factory"'}) from None
        wait = limiter.take(str(principal.api_key_id))
        if wait is not None:
            raise Problem(429, f"rate limit of this API key ({config.rate_per_s:g}/s, burst {config.burst}) "
                          f"reached; retry in {wait} s", slug="rate-limited",
                          headers={"Retry-After": str(wait)})
        if not principal.allows(scope):
            raise Problem(403, f"this API key lacks the scope {scope}", slug="forbidden")
        return principal

    def requires(scope: str) -> Any:
        """The route's key check, as a dependency: it runs before the body and the parameters are
        validated, so a caller without a usable key learns nothing about what it sent (401 first)."""

        async def principal(request: Request) -> ApiPrincipal:
            return await asyncio.to_thread(authorize, request, scope)

        return Depends(principal)

    writer, reader = requires("orders:write"), requires("orders:read")

    async def view(tenant_id: str, order_id: str) -> OrderOut:
        handle = state["client"].get_workflow_handle(order_workflow_id(tenant_id, order_id))
        try:
            snapshot, compensation, timeline = await asyncio.wait_for(asyncio.gather(
                handle.query(OrderFulfillmentWorkflow.status),
                handle.query(OrderFulfillmentWorkflow.compensation),
                handle.query(OrderFulfillmentWorkflow.timeline),
            ), _QUERY_TIMEOUT_S)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise Problem(404, f"no order {order_id} for this tenant", slug="not-found") from None
            raise Problem(503, "the order service did not answer; retry later", slug="unavailable") from None
        except TimeoutError:
            raise Problem(504, f"no saga worker answered within {_QUERY_TIMEOUT_S:g} s; retry later",
                          slug="timeout") from None
        return OrderOut(
            order_id=snapshot.order_id, tenant_id=snapshot.tenant_id, correlation_id=snapshot.correlation_id,
            status=str(snapshot.status), step=str(snapshot.step), failure=snapshot.failure,
            incident_id=snapshot.incident_id,
            compensation=CompensationOut(owed=[str(e.step) for e in compensation.owed],
                                         done=[str(s) for s in compensation.done], states=compensation.states,
                                         summary=compensation.summary),
            timeline=[TimelineOut(direction=e.direction, event_type=e.event_type, event_id=e.event_id,
                                  at=e.at)
                      for e in timeline],
        )

    @app.post("/v1/orders", status_code=201, response_model=OrderOut, dependencies=[Security(_bearer)],
              responses={200: {"description": "A retry with the same Idempotency-Key: the same order",
                               "model": OrderOut},
                         409: {"description": "The order id exists already", **_PROBLEM}})
    async def place(
        response: Response,
        order: Annotated[OrderIn, Body()],
        idempotency_key: Annotated[str | None,
                                   Header(alias="Idempotency-Key", pattern=_IDEMPOTENCY_KEY)] = None,
        principal: ApiPrincipal = writer,
    ) -> OrderOut:
        """Place an order (scope `orders:write`): its saga starts, with the payment when given."""
        order_id = order.order_id or uuid.uuid4()
        replay = False  # True: an earlier request with this Idempotency-Key started the saga
        if idempotency_key is not None:
            body = order.model_dump(mode="json", by_alias=True, exclude={"order_id"})
            claim = await asyncio.to_thread(idempotency.claim, principal.tenant_id, idempotency_key,
                                            {**body, "orderId": str(order.order_id)}, order_id)
            if not claim.same_request:
                raise Problem(422, "this Idempotency-Key was used with a different request",
                              slug="validation",
                              errors=[{"header": "Idempotency-Key", "detail": "reused with another body"}])
            order_id = claim.order_id
        try:
            request_ = new_order(principal.tenant_id, order.plan_id, region=order.region,
                                 customer_id=str(order.customer_id) if order.customer_id else None,
                                 order_id=str(order_id))
        except ValueError as exc:
            message = str(exc)
            pointer = "#/region" if message.startswith("region") else "#/planId"
            raise Problem(422, f"{pointer}: {message}", slug="validation",
                          errors=[{"pointer": pointer, "detail": message}]) from None
        request_ = dataclasses.replace(request_, actor_id=str(principal.api_key_id), actor_type="api_key")
        payment = order.payment
        try:
            await place_order(state["client"], request_, pay=payment is not None,
                              declined=payment is not None and payment.outcome is PaymentOutcome.DECLINED,
                              task_queue=config.task_queue)
        except WorkflowAlreadyStartedError:
            if idempotency_key is None:
                raise Problem(409, f"order {order_id} exists already", slug="conflict") from None
            replay = True
        except OrderCommandRefused as exc:
            raise Problem(409, str(exc), slug="conflict") from None
        try:
            result = await view(principal.tenant_id, str(order_id))
        except Problem as exc:
            if exc.status not in (503, 504):
                raise
            # The order is placed; only its read-back is late. Say so rather than fail, or a client
            # retrying without an Idempotency-Key would place a second order.
            result = OrderOut(order_id=str(order_id), tenant_id=principal.tenant_id,
                              correlation_id=request_.correlation_id, status="placed", step="-")
        response.headers["Location"] = f"/v1/orders/{order_id}"
        if replay:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        return result

    @app.get("/v1/orders/{order_id}", response_model=OrderOut, dependencies=[Security(_bearer)],
             responses={404: {"description": "No such order for this key's tenant", **_PROBLEM}})
    async def show(order_id: uuid.UUID, principal: ApiPrincipal = reader) -> OrderOut:
        """The order's status, step, compensation and timeline (scope `orders:read`)."""
        return await view(principal.tenant_id, str(order_id))

    @app.post("/v1/orders/{order_id}/cancel", status_code=202, response_model=OrderOut,
              dependencies=[Security(_bearer)],
              responses={404: {"description": "No such order for this key's tenant", **_PROBLEM},
                         409: {"description": "The order can no longer be cancelled", **_PROBLEM}})
    async def cancel(order_id: uuid.UUID, principal: ApiPrincipal = writer) -> OrderOut:
        """Cancel the order (scope `orders:write`): the saga undoes what it did, newest first."""
        await view(principal.tenant_id, str(order_id))  # 404 for another tenant's or an unknown order
        try:
            await cancel_order(state["client"], order_workflow_id(principal.tenant_id, str(order_id)),
                               note=f"cancelled through the API by key {principal.api_key_id}")
        except OrderCommandRefused as exc:
            raise Problem(409, str(exc).split(": ", 1)[-1], slug="conflict") from None
        except LookupError:
            raise Problem(404, f"no order {order_id} for this tenant", slug="not-found") from None
        return await view(principal.tenant_id, str(order_id))

    @app.get("/healthz", response_model=Health)
    async def health(response: Response) -> Health:
        """Liveness and the two servers it needs (no key needed)."""
        database = temporal = "ok"
        try:
            await asyncio.wait_for(asyncio.to_thread(_ping, config.engine), 3)
        except Exception:  # noqa: BLE001 - any failure means "down" here
            database = "down"
        try:
            await asyncio.wait_for(state["client"].service_client.check_health(), 3)
        except Exception:  # noqa: BLE001
            temporal = "down"
        ok = database == temporal == "ok"
        response.status_code = 200 if ok else 503
        return Health(status="ok" if ok else "degraded", temporal=temporal, database=database)

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = original_openapi()
            document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = _PROBLEM_SCHEMA
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return OpenTelemetryMiddleware(BodySizeLimit(app, config.max_body_bytes), excluded_urls="healthz")


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("select 1"))


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "One line naming what is wrong."},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "pointer": {"type": "string", "description": "JSON pointer into the body, e.g. #/planId"},
            "header": {"type": "string"}, "parameter": {"type": "string"},
            "detail": {"type": "string"}}, "required": ["detail"]}},
    },
}
