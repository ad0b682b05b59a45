"""The benchmark's baseline: a bare workflow of N sequential no-op activities (no Kafka, no DB).

Its own small module so the workflow sandbox imports nothing heavy when it loads it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

__all__ = ["BareWorkflow", "bench_noop"]


@activity.defn(name="bench_noop")
def bench_noop(step: int) -> int:
    return step


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_activity("bench_noop", step, start_to_close_timeout=timedelta(seconds=60))
        return steps
