"""The CLI starts fast because help needs no server library (issue 12, point 6).

Not a timing test (times depend on the machine; `bench/bench_cli.py` measures them): a fresh
interpreter runs the console script's `main` for a help screen, and afterwards none of the heavy
libraries or project layers may be in `sys.modules`. A module-level import of any of them in
`cloud_factory/cli/` — the thing that made `--help` take over a second — fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Loaded only by a command that runs: the clients, the ORM, the event contract and every layer below
#: `cloud_factory`, pydantic-settings and Rich (tables, live views). Not pydantic itself: Typer (0.2x)
#: coerces option values with it, a sub-command's `--help` included, so that cost is Typer's.
HEAVY = ("temporalio", "confluent_kafka", "sqlalchemy", "psycopg", "pydantic_settings", "rich",
         "core", "schemas", "messaging", "workflows", "services", "activities", "bridges", "workers",
         "cloud_factory.stack", "cloud_factory.demo", "cloud_factory.faults")

_PROBE = """
import json, os, sys
heavy = json.loads(sys.argv[2])
def _exit(code):  # the CLI leaves with os._exit; here it must come back to report what it loaded
    raise SystemExit(code)
os._exit = _exit
sys.argv = ["cloud-factory", *json.loads(sys.argv[1])]
from cloud_factory.entry import main
code = None
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print("\\nLOADED " + json.dumps({"code": code, "loaded": loaded}))
"""


def _help_imports(argv: list[str]) -> tuple[object, list[str], str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(HEAVY)],
                          capture_output=True, text=True, timeout=60)
    _, found, marker = done.stdout.rpartition("\nLOADED ")
    assert found, done.stdout + done.stderr
    report = json.loads(marker)
    return report["code"], report["loaded"], done.stdout


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["order", "show", "--help"],
    ["order", "place", "--help"],
    ["dlq", "list", "--help"],
    ["worker", "--help"],
    ["events", "sign", "--help"],
    ["stack", "--help"],
], ids=" ".join)
def test_help_loads_no_heavy_module(argv: list[str]) -> None:
    code, loaded, output = _help_imports(argv)
    assert code in (0, None), output
    assert "Usage:" in output, output
    roots = sorted({next(h for h in HEAVY if m == h or m.startswith(h + ".")) for m in loaded})
    assert loaded == [], (f"`cloud-factory {' '.join(argv)}` imported {', '.join(roots)} "
                          f"({len(loaded)} modules)")


def test_the_offered_choices_are_their_sources() -> None:
    """`cloud_factory.choices` copies its sources so that help imports none of them; a new service,
    worker kind, signing mode, algorithm or resource step must show up in the CLI too."""
    import schemas
    from cloud_factory import choices
    from workers.kinds import WorkerKind
    from workflows.plans import RESOURCE_STEPS

    pairs = [(choices.ServiceChoice, schemas.Service), (choices.WorkerKindChoice, WorkerKind),
             (choices.SigningModeChoice, schemas.SigningMode), (choices.AlgorithmChoice, schemas.Algorithm)]
    for offered, source in pairs:
        assert [m.value for m in offered] == [m.value for m in source], source.__name__
    assert choices.FAIL_POINTS == ("payment", *RESOURCE_STEPS, "transient", "refund", "deprovision")
