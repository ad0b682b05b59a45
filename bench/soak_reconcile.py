"""Per-order reconciliation of a soak run: the saga's outcome, its events on Kafka and the rows of
Provisioning's provider and Billing must tell the same story.

The services act on events after the saga has moved on (Billing captures and invoices while the saga
is already provisioning or done), so the rows may lag the outcome by a little: `reconcile` reads
again until every order agrees or `settle_s` has passed. Kafka is read incrementally (each pass
only what arrived since the last), PostgreSQL in a few queries per pass.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

import schemas
from core.settings import Settings
from messaging import TopicReader
from services.billing.tables import invoices, payments, psp_operations, refunds
from services.provisioning.tables import cloud
from workflows.contracts import OrderRequest
from workflows.plans import RESOURCE_STEPS

__all__ = ["EXPECTED", "FlowIndex", "OrderRun", "Reconciliation", "reconcile"]

#: The outcomes each scenario may end in (a cancel can arrive too late: the order is delivered).
EXPECTED: dict[str, frozenset[str]] = {
    "happy path": frozenset({"delivered"}),
    "transient": frozenset({"delivered"}),
    "payment": frozenset({"payment_failed"}),
    "network": frozenset({"compensated"}),
    "disk": frozenset({"compensated"}),
    "vps": frozenset({"compensated"}),
    "cancel": frozenset({"cancelled", "delivered"}),
    "refund": frozenset({"compensation_failed"}),
}
_DOMAINS = ("order.", "billing.", "provisioning.")


@dataclass
class OrderRun:
    """One order of the run: what it was set up to do and what happened (times: seconds since start)."""

    order: OrderRequest
    scenario: str
    placed_at: float | None = None
    done_at: float | None = None
    outcome: str | None = None
    cancel_sent: bool = False


@dataclass
class Flow:
    """One order's distinct events on Kafka (by event id)."""

    types: Counter = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)  # resource ids of provisioning.resource-created
    deleted: set[str] = field(default_factory=set)
    dead: int = 0  # records of the order dead-lettered by any consumer
    first_created: float | None = None  # order.created's occurred_at (epoch s)
    last_order_event: float | None = None  # the saga's last event's occurred_at (epoch s)


class FlowIndex:
    """Every record of the order, billing and provisioning topics since `since_ms` whose key is one
    of the run's correlation ids, read incrementally; and the run's records on any dead-letter topic
    (a consumer that gave up on one of them: the order's flow is broken even if its rows agree)."""

    def __init__(self, settings: Settings, correlations: set[str], since_ms: int) -> None:
        self.settings, self.correlations, self.since_ms = settings, correlations, since_ms
        self.topics = [schemas.topic_for(t, env=settings.env) for t in schemas.catalog
                       if t.startswith(_DOMAINS)]
        self.dlq_topics = {schemas.dlq_topic_for(t, env=settings.env) for t in schemas.catalog}
        self.flows: dict[str, Flow] = defaultdict(Flow)
        self._after: dict[str, dict[int, int]] = defaultdict(dict)
        self.records = 0

    def refresh(self) -> None:
        with TopicReader(self.settings.bootstrap_servers, group_prefix="soak-reader") as reader:
            known = set(reader.topic_names())
            ranges = [r for topic in [*self.topics, *sorted(self.dlq_topics)] if topic in known
                      for r in reader.to_end(topic, since_ms=self.since_ms, after=self._after[topic])]
            for msg in reader.read(ranges, timeout_s=900):
                self._after[msg.topic()][msg.partition()] = msg.offset()
                key = (msg.key() or b"").decode()
                if key not in self.correlations:
                    continue
                if msg.topic() in self.dlq_topics:
                    self.flows[key].dead += 1
                else:
                    self._add(key, schemas.decode(msg.value()))

    def _add(self, key: str, envelope: schemas.Envelope) -> None:
        flow = self.flows[key]
        event_id = str(envelope.event_id)
        if event_id in flow.seen:
            return  # an at-least-once redelivery: the same event again
        self.records += 1
        flow.seen.add(event_id)
        kind = envelope.event_type
        flow.types[kind] += 1
        at = envelope.occurred_at.timestamp()
        if kind == "order.created":
            flow.first_created = at
        if kind.startswith("order.") or kind == "billing.refund-requested":
            flow.last_order_event = max(at, flow.last_order_event or at)
        if kind == "provisioning.resource-created":
            flow.created.add(str(envelope.data.resource.resource_id))
        elif kind == "provisioning.resource-deleted":
            flow.deleted.add(str(envelope.data.resource.resource_id))


@dataclass
class Rows:
    """One order's rows in Provisioning's provider and in Billing."""

    live: set[str] = field(default_factory=set)  # cloud resources not deleted
    gone: set[str] = field(default_factory=set)  # cloud resources deleted
    payments: Counter = field(default_factory=Counter)  # status → count
    psp: Counter = field(default_factory=Counter)  # capture | refund → gateway operations
    refunds: Counter = field(default_factory=Counter)  # status → count
    invoices: int = 0


def _rows(engine: Engine, order_ids: list[uuid.UUID]) -> dict[str, Rows]:
    rows: dict[str, Rows] = defaultdict(Rows)
    with engine.connect() as conn:
        for chunk in range(0, len(order_ids), 2000):
            ids = order_ids[chunk:chunk + 2000]
            for order_id, resource_id, deleted_at in conn.execute(
                    select(cloud.c.order_id, cloud.c.resource_id, cloud.c.deleted_at)
                    .where(cloud.c.order_id.in_(ids))):
                (rows[str(order_id)].gone if deleted_at else rows[str(order_id)].live).add(str(resource_id))
            for table, target in ((payments, "payments"), (refunds, "refunds")):
                for order_id, status, count in conn.execute(
                        select(table.c.order_id, table.c.status, func.count())
                        .where(table.c.order_id.in_(ids)).group_by(table.c.order_id, table.c.status)):
                    getattr(rows[str(order_id)], target)[status] += count
            for order_id, kind, count in conn.execute(
                    select(psp_operations.c.order_id, psp_operations.c.kind, func.count())
                    .where(psp_operations.c.order_id.in_(ids))
                    .group_by(psp_operations.c.order_id, psp_operations.c.kind)):
                rows[str(order_id)].psp[kind] += count
            for order_id, count in conn.execute(
                    select(invoices.c.order_id, func.count()).where(invoices.c.order_id.in_(ids))
                    .group_by(invoices.c.order_id)):
                rows[str(order_id)].invoices += count
    return rows


def _check(run: OrderRun, flow: Flow, rows: Rows) -> list[str]:
    """What does not agree for one order (empty: it reconciles)."""
    ev, outcome, bad = flow.types, run.outcome, []

    def need(ok: bool, what: str) -> None:
        if not ok:
            bad.append(what)

    expected = EXPECTED[run.scenario]
    need(outcome in expected, f"outcome {outcome} (expected {'|'.join(sorted(expected))})")
    need(ev["order.created"] == 1, f"{ev['order.created']}× order.created")
    need(flow.dead == 0, f"{flow.dead} records dead-lettered")
    # Kafka and the tables agree whatever the outcome.
    need(flow.created == rows.live | rows.gone,
         f"resource-created events {len(flow.created)} vs provider resources {len(rows.live | rows.gone)}")
    need(flow.deleted == rows.gone,
         f"resource-deleted events {len(flow.deleted)} vs deleted resources {len(rows.gone)}")
    captured = rows.payments["captured"]
    need(ev["billing.payment-captured"] == captured == rows.psp["capture"],
         f"payment-captured events {ev['billing.payment-captured']}, captured payments {captured}, "
         f"gateway captures {rows.psp['capture']}")
    need(ev["billing.refund-completed"] == rows.refunds["completed"] == rows.psp["refund"],
         f"refund-completed events {ev['billing.refund-completed']}, completed refunds "
         f"{rows.refunds['completed']}, gateway refunds {rows.psp['refund']}")
    need(ev["billing.invoice-created"] == rows.invoices,
         f"invoice-created events {ev['billing.invoice-created']} vs invoices {rows.invoices}")
    paid = outcome != "payment_failed"
    need(ev["order.payment-confirmed"] == int(paid),
         f"{ev['order.payment-confirmed']}× order.payment-confirmed")
    need(captured == int(paid), f"{captured} captures")
    if outcome == "delivered":
        need(ev["order.service-delivered"] == 1 and ev["order.failed"] == 0, "not delivered on Kafka")
        need(len(rows.live) == len(RESOURCE_STEPS) and not rows.gone,
             f"{len(rows.live)} live / {len(rows.gone)} deleted resources")
        need(rows.invoices == 1, f"{rows.invoices} invoices")
        need(not rows.refunds, f"refunds {dict(rows.refunds)}")
    elif outcome == "payment_failed":
        need(ev["order.failed"] == 1, f"{ev['order.failed']}× order.failed")
        need(not rows.live and not rows.gone, "resources exist")
        need(rows.invoices == 0 and not rows.refunds, "billed or refunded")
    elif outcome in ("compensated", "cancelled", "compensation_failed"):
        need(ev["order.service-delivered"] == 0, "order.service-delivered published")
        need(not rows.live, f"{len(rows.live)} resources left behind")
        need(ev["order.failed"] == int(outcome != "cancelled"), f"{ev['order.failed']}× order.failed")
        if run.scenario in RESOURCE_STEPS or run.scenario == "refund":
            failed_at = "vps" if run.scenario == "refund" else run.scenario
            made = RESOURCE_STEPS.index(failed_at)
            need(len(rows.gone) == made, f"{len(rows.gone)} resources created and deleted (expected {made})")
        need(rows.invoices == ev["order.fulfilled"],
             f"{rows.invoices} invoices, order.fulfilled {ev['order.fulfilled']}×")
        if outcome == "compensation_failed":
            need(rows.refunds["completed"] == 0 and rows.refunds["failed"] >= 1,
                 f"refunds {dict(rows.refunds)}")
            need(ev["order.compensation-failed"] >= 1, "no order.compensation-failed")
        else:
            need(rows.refunds == Counter(completed=1), f"refunds {dict(rows.refunds)}")
            need(ev["order.compensation-completed"] == 1,
                 f"{ev['order.compensation-completed']}× order.compensation-completed")
    return bad


@dataclass
class Reconciliation:
    mismatches: dict[str, list[str]]  # workflow id → what disagrees
    passes: int
    settled_s: float
    records: int


def reconcile(settings: Settings, engine: Engine, runs: list[OrderRun], index: FlowIndex, *,
              settle_s: float = 120, say=print) -> Reconciliation:  # noqa: ANN001
    """Check every order; read again every few seconds while some disagree, up to `settle_s`."""
    start = time.monotonic()
    ids = [uuid.UUID(run.order.order_id) for run in runs]
    passes = 0
    while True:
        passes += 1
        index.refresh()
        rows = _rows(engine, ids)
        mismatches = {}
        for run in runs:
            problems = _check(run, index.flows[run.order.correlation_id], rows[run.order.order_id])
            if problems:
                mismatches[run.order.workflow_id] = problems
        waited = time.monotonic() - start
        final = all(p.startswith("outcome ") for problems in mismatches.values() for p in problems)
        if not mismatches or final or waited > settle_s:  # a wrong outcome does not settle
            return Reconciliation(mismatches, passes, waited, index.records)
        say(f"reconciling: {len(mismatches)} orders disagree after {waited:.0f} s; reading again")
        time.sleep(3)
