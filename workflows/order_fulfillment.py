"""`OrderFulfillmentWorkflow`: one durable saga per order.

Deterministic by construction: no clock, randomness or I/O here; every side effect (publishing an
event) is an activity, and each activity's event id is derived from the workflow id and the step,
so a retried activity never mints a second event. Later behaviour changes must go behind
`workflow.patched` so the histories under tests/histories/ keep replaying.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import OrderRequest, OrderResult, PublishRequest, PublishedEvent

__all__ = ["ORDER_TASK_QUEUE", "OrderFulfillmentWorkflow", "SA_CORRELATION_ID", "SA_ORDER_STATUS", "SA_TENANT_ID"]

ORDER_TASK_QUEUE = "cloud-factory-orders"

SA_CORRELATION_ID = SearchAttributeKey.for_keyword("CorrelationId")
SA_TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
SA_ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")

_PUBLISH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(seconds=30))


@workflow.defn
class OrderFulfillmentWorkflow:
    def __init__(self) -> None:
        self._status = "pending"
        self._timeline: list[PublishedEvent] = []

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        workflow.upsert_search_attributes([
            SA_CORRELATION_ID.value_set(order.correlation_id),
            SA_TENANT_ID.value_set(order.tenant_id),
            SA_ORDER_STATUS.value_set("created"),
        ])
        created = await self._publish(order, step="order-created", event_type="order.created",
                                      data=order.created_payload(), causation_id=None)
        self._status = "created"
        return OrderResult(order_id=order.order_id, status=self._status,
                           events=[event.event_id for event in self._timeline], last_event_id=created.event_id)

    async def _publish(self, order: OrderRequest, *, step: str, event_type: str, data: dict,
                       causation_id: str | None) -> PublishedEvent:
        published: PublishedEvent = await workflow.execute_activity(
            "publish_event",
            PublishRequest(workflow_id=workflow.info().workflow_id, step=step, event_type=event_type, data=data,
                           tenant_id=order.tenant_id, correlation_id=order.correlation_id,
                           causation_id=causation_id, actor_id=order.actor_id, actor_type=order.actor_type,
                           occurred_at=workflow.now().isoformat()),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_PUBLISH_RETRY,
            result_type=PublishedEvent,
        )
        self._timeline.append(published)
        return published

    @workflow.query
    def status(self) -> str:
        return self._status

    @workflow.query
    def timeline(self) -> list[PublishedEvent]:
        return list(self._timeline)
