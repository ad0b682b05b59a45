"""The main job, smaller: every scenario of the first 12 demo orders ends as it should, and the
summary is read back from Kafka and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest

from cloud_factory.demo import DEMO_PLAN, run_demo
from core.settings import Settings

pytestmark = pytest.mark.stack

EXPECTED = {
    None: "delivered",
    "transient": "delivered",
    "vps": "compensated",
    "disk": "compensated",
    "network": "compensated",
    "payment": "payment_failed",
    "cancel": "cancelled",
    "refund": "compensation_failed",
}


async def test_demo_runs_every_scenario_to_its_outcome(stack, settings: Settings, unique: str) -> None:
    seen: list[int] = []
    summary = await run_demo(
        settings,
        orders=12,
        tag=unique,
        say=lambda _text: None,
        on_progress=lambda items: seen.append(len(items)),
    )
    assert seen and set(seen) == {12}
    for item, scenario in zip(summary.orders, DEMO_PLAN[:12], strict=True):
        assert item.status == EXPECTED[scenario], (scenario, item.status)
    assert summary.outcomes == Counter(EXPECTED[s] for s in DEMO_PLAN[:12])
    assert summary.events_per_type["order.created"] == 12
    assert summary.actors == Counter({"api_key": 12})  # every order came in through the HTTP API
    assert summary.events_per_type["order.service-delivered"] == summary.outcomes["delivered"]
    assert summary.events_per_type["billing.refund-failed"] == 0  # the refund scenario is order 13
    assert summary.dlq == 0
    assert summary.duplicates_suppressed >= 3  # the demo re-sends three records on purpose
    assert summary.notifications > 0 and f"demo{unique}-" in summary.ui_url
