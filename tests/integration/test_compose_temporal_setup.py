"""The compose file's Temporal one-shot (compose/temporal-namespace.sh), run against a real server with
the Temporal CLI that admin-tools also carries: it registers the namespace and every search attribute
the saga upserts, is safe to run again, and fails — not `|| true` — when the server never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from core.settings import Settings
from tests.support.container_model import ROOT, compose_config

SCRIPT = ROOT / "compose" / "temporal-namespace.sh"


def _run(address: str, namespace: str, attributes: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/"),
        "TEMPORAL_ADDRESS": address,
        "CF_TEMPORAL_NAMESPACE": namespace,
        "CF_SEARCH_ATTRIBUTES": attributes,
        "CF_SETUP_DELAY_S": "0.5",
        **extra,
    }
    return subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180)


def _listed(settings: Settings, namespace: str) -> dict[str, str]:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "operator",
            "search-attribute",
            "list",
            "--address",
            settings.temporal_target,
            "--namespace",
            namespace,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split()[:2] for line in out.splitlines()[1:] if line.strip())


def test_the_namespace_one_shot_registers_every_attribute_and_can_run_again(
    stack, settings: Settings, unique: str
) -> None:
    attributes = compose_config()["services"]["temporal-namespace"]["environment"]["CF_SEARCH_ATTRIBUTES"]
    namespace = f"compose-{unique}"
    first = _run(settings.temporal_target, namespace, attributes)
    assert first.returncode == 0, first.stderr
    listed = _listed(settings, namespace)
    for pair in attributes.split():
        name, kind = pair.split("=")
        assert listed.get(name) == kind, (name, listed)
    again = _run(settings.temporal_target, namespace, attributes)
    assert again.returncode == 0 and f"namespace {namespace} ready" in again.stdout, again.stderr


def test_the_one_shot_fails_when_the_server_never_answers(unique: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    result = _run(closed, f"compose-{unique}", "CorrelationId=Keyword", CF_SETUP_ATTEMPTS="2")
    assert result.returncode == 1
    assert "error: the cluster health check failed 2 times" in result.stderr


def test_the_one_shot_fails_on_an_attribute_the_server_refuses(
    stack, settings: Settings, unique: str
) -> None:
    result = _run(settings.temporal_target, f"compose-{unique}", "Broken=NoSuchType", CF_SETUP_ATTEMPTS="2")
    assert result.returncode == 1 and "registering search attribute Broken=NoSuchType failed" in result.stderr
