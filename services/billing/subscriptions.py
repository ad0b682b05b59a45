"""What Billing consumes: the confirmed payment it captures, the fulfilled order it invoices and the
saga's refund requests (consumer group `billing`, on the saga's path)."""

from __future__ import annotations

from sqlalchemy import Engine

from schemas import Service
from services.billing.gateway import SimulatedGateway
from services.billing.handler import BillingHandlers
from services.billing.tables import metadata
from services.common.emitter import Emitter
from services.common.subscriptions import Subscriptions

__all__ = ["SUBSCRIPTIONS"]


def _handlers(engine: Engine, emitter: Emitter) -> BillingHandlers:
    return BillingHandlers(engine, emitter, SimulatedGateway(engine))


SUBSCRIPTIONS = Subscriptions(
    service=Service.BILLING,
    group_id="billing",
    schema=metadata,
    handlers=_handlers,
    routes={
        "order.payment-confirmed": BillingHandlers.on_payment_confirmed,
        "order.fulfilled": BillingHandlers.on_order_fulfilled,
        "billing.refund-requested": BillingHandlers.on_refund_requested,
    },
    on_saga_path=True,
)
