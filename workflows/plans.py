"""What an order's plan asks Provisioning to create: a pure function, safe inside workflow code.

Every plan gets a network, a disk and the VPS itself, in that order; Provisioning creates them in
list order and the compensation deletes them in reverse (the VPS first).
"""

from __future__ import annotations

import re

from schemas.payloads._base import ResourceKind, ResourceSpec

__all__ = ["RESOURCE_STEPS", "resources_for_plan"]

RESOURCE_STEPS = ("network", "disk", "vps")
_PLAN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def resources_for_plan(plan_id: str) -> list[ResourceSpec]:
    """The `ResourceSpec`s for `plan_id`; the VPS SKU follows the plan."""
    if not _PLAN.match(plan_id) or len(plan_id) > 64:
        raise ValueError(f"plan_id {plan_id!r} is not a plan slug like 'vm-standard-2'")
    return [
        ResourceSpec(kind=ResourceKind.IP_ADDRESS, name="network", sku="NET-IPV4", quantity=1),
        ResourceSpec(kind=ResourceKind.BUCKET, name="disk", sku="DISK-SSD-50", quantity=1),
        ResourceSpec(kind=ResourceKind.VM, name="vps", sku=plan_id.upper(), quantity=1),
    ]
