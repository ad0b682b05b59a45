"""The values the command line offers as choices, as plain enums that import nothing.

Typer builds every command's options when the CLI starts, `--help` included; taking these values
from their sources (`schemas.Service`, `workers.kinds.WorkerKind`, …) would load pydantic, the event
catalog and the service layer first, which is most of a second. Each enum here copies its source, and
`tests/unit/test_cli_startup.py` fails as soon as the two differ. A command turns the member it got
into the real type once it runs (`Service(member)`: the values are the same strings).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FAIL_POINTS", "AlgorithmChoice", "ServiceChoice", "SigningModeChoice", "WorkerKindChoice"]


class ServiceChoice(StrEnum):
    """`schemas.Service`, in its order."""

    ORDER = "order"
    PROVISIONING = "provisioning"
    BILLING = "billing"
    NOTIFICATION = "notification"
    IDENTITY = "identity"
    PRODUCT = "product"
    SUPPORT = "support"


class WorkerKindChoice(StrEnum):
    """`workers.kinds.WorkerKind`: the saga, the bridge, one per domain service but Order, the API, all."""

    SAGA = "saga"
    BRIDGE = "bridge"
    PROVISIONING = "provisioning"
    BILLING = "billing"
    NOTIFICATION = "notification"
    IDENTITY = "identity"
    PRODUCT = "product"
    SUPPORT = "support"
    API = "api"
    ALL = "all"


class SigningModeChoice(StrEnum):
    """`schemas.SigningMode`."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"


class AlgorithmChoice(StrEnum):
    """`schemas.Algorithm`."""

    HMAC_SHA256 = "hmac-sha256"
    ED25519 = "ed25519"


FAIL_POINTS = ("payment", "network", "disk", "vps", "transient", "refund", "deprovision")
"""`cloud_factory.faults`: payment (declined), each of `workflows.plans.RESOURCE_STEPS` (provisioning
fails there for good), then transient, refund and deprovision (see `faults.arm_failure`)."""
