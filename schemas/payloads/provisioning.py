"""Payloads of the Provisioning domain: creating and deleting customers' cloud resources.

`provisioning.completed` has evolved twice (see `schemas.upcasters`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from schemas.payloads._base import (
    ErrorCode,
    Payload,
    Region,
    ResourceKind,
    ResourceName,
    ResourceRef,
    ResourceSpec,
    ShortText,
    WireModel,
)

__all__ = [
    "DeprovisionReason",
    "Endpoint",
    "ProvisionedResourceV2",
    "ProvisioningCompletedV1",
    "ProvisioningCompletedV2",
    "ProvisioningCompletedV3",
    "ProvisioningDeprovisionFailedV1",
    "ProvisioningDeprovisionedV1",
    "ProvisioningDeprovisioningStartedV1",
    "ProvisioningFailedV1",
    "ProvisioningResourceCreatedV1",
    "ProvisioningResourceDeletedV1",
    "ProvisioningStartedV1",
]

ResourceList = Annotated[list[ResourceRef], Field(min_length=1, max_length=100)]


class ProvisioningStartedV1(Payload):
    order_id: UUID
    customer_id: UUID
    region: Region
    resources: Annotated[list[ResourceSpec], Field(min_length=1, max_length=100)]
    estimated_seconds: Annotated[int, Field(ge=0, le=86_400)]


class ProvisioningResourceCreatedV1(Payload):
    order_id: UUID
    resource: ResourceRef
    attempt: Annotated[int, Field(ge=1)]


class ProvisioningCompletedV1(Payload):
    """v1: the first release only provisioned virtual machines, in a single region."""

    order_id: UUID
    region: Region
    resource_ids: Annotated[list[UUID], Field(min_length=1, max_length=100)]


class ProvisionedResourceV2(WireModel):
    resource_id: UUID
    kind: ResourceKind
    name: ResourceName


class ProvisioningCompletedV2(Payload):
    """v2: databases and buckets arrived, so each resource says what it is."""

    order_id: UUID
    region: Region
    resources: Annotated[list[ProvisionedResourceV2], Field(min_length=1, max_length=100)]


class Endpoint(WireModel):
    resource_id: UUID
    url: Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*://[^\s]+$", max_length=2048)]


class ProvisioningCompletedV3(Payload):
    """v3: multi-region orders (region moves onto each resource), endpoints and the attempt count."""

    order_id: UUID
    resources: ResourceList
    endpoints: Annotated[list[Endpoint], Field(max_length=100)]
    attempts: Annotated[int, Field(ge=1, le=100)]


class ProvisioningFailedV1(Payload):
    order_id: UUID
    region: Region
    error_code: ErrorCode
    reason: ShortText
    retryable: bool
    partial_resources: Annotated[list[ResourceRef], Field(max_length=100)]


class DeprovisionReason(StrEnum):
    ORDER_CANCELLED = "order_cancelled"
    COMPENSATION = "compensation"
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"
    CUSTOMER_REQUEST = "customer_request"


class ProvisioningDeprovisioningStartedV1(Payload):
    order_id: UUID
    resources: ResourceList
    reason: DeprovisionReason


class ProvisioningResourceDeletedV1(Payload):
    order_id: UUID
    resource: ResourceRef


class ProvisioningDeprovisionedV1(Payload):
    """`resources` may be empty: "nothing existed, nothing left" is a confirmation too.

    The saga asks to release whatever exists when provisioning timed out before saying what it
    created; when nothing was, an empty list lets it go on at once instead of waiting out every
    backoff window. Relaxing `min_length=1` to 0 within v1 is backward compatible (every event valid
    before still is, and the upcast chain is untouched); no v2, because nothing else changed.
    """

    order_id: UUID
    customer_id: UUID
    resources: Annotated[list[ResourceRef], Field(max_length=100)]
    reason: DeprovisionReason


class ProvisioningDeprovisionFailedV1(Payload):
    order_id: UUID
    failed_resources: ResourceList
    error_code: ErrorCode
    reason: ShortText
