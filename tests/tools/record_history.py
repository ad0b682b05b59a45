"""Records a workflow history from a real run on the local stack into tests/histories/NAME.json.

    .venv/bin/cloud-factory stack up
    .venv/bin/python -m tests.tools.record_history order_created

Each scenario runs the real saga worker against the real Temporal server and Kafka; the JSON it
writes is what `tests/replay` replays with `temporalio.worker.Replayer`.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from cloud_factory.settings import get_settings
from cloud_factory.tracing import configure_tracing
from messaging.wiring import ensure_catalog_topics
from workers.saga import build_saga_worker, connect_client
from workflows.contracts import OrderRequest
from workflows.order_fulfillment import OrderFulfillmentWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def _order() -> OrderRequest:
    return OrderRequest(tenant_id="history", order_id=str(uuid.uuid4()), customer_id=str(uuid.uuid4()),
                        plan_id="vm-standard-2", region="eu-west-1", amount_minor=2900, tax_minor=551)


async def _order_created(client, task_queue: str) -> str:
    order = _order()
    await client.execute_workflow(OrderFulfillmentWorkflow.run, order, id=order.workflow_id, task_queue=task_queue)
    return order.workflow_id


SCENARIOS: dict[str, Callable[..., Awaitable[str]]] = {"order_created": _order_created}


async def record(name: str, out_dir: Path = HISTORIES) -> Path:
    settings = get_settings()
    configure_tracing("history-recorder")
    ensure_catalog_topics(settings)
    client = await connect_client(settings)
    task_queue = f"history-{uuid.uuid4().hex[:8]}"
    async with build_saga_worker(client, settings, task_queue=task_queue):
        workflow_id = await SCENARIOS[name](client, task_queue)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(history.to_json())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    print(asyncio.run(record(args.scenario)))


if __name__ == "__main__":
    main()
