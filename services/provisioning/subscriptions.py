"""What Provisioning consumes: the saga's request to create an order's resources, and the cancel that
deletes them (consumer group `provisioning`, on the saga's path)."""

from __future__ import annotations

from sqlalchemy import Engine

from schemas import Service
from services.common.emitter import Emitter
from services.common.subscriptions import Subscriptions
from services.provisioning.handler import ProvisioningHandlers
from services.provisioning.simulator import SimulatedProvider
from services.provisioning.tables import metadata

__all__ = ["SUBSCRIPTIONS"]


def _handlers(engine: Engine, emitter: Emitter) -> ProvisioningHandlers:
    return ProvisioningHandlers(engine, emitter, SimulatedProvider(engine))


SUBSCRIPTIONS = Subscriptions(
    service=Service.PROVISIONING,
    group_id="provisioning",
    schema=metadata,
    handlers=_handlers,
    routes={
        "order.provisioning-started": ProvisioningHandlers.on_provisioning_started,
        "order.cancelled": ProvisioningHandlers.on_order_cancelled,
    },
    on_saga_path=True,
)
