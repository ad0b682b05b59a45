"""docker-compose.yml is valid (checked offline by docker-compose itself) and wires the platform."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_and_complete() -> None:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose is missing: scripts/setup.sh installs Debian's docker-compose"
    result = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"kafka", "temporal", "temporal-postgresql", "temporal-ui", "postgres", "workers", "api"} <= set(services)
    api = services["api"]
    assert api["command"] == ["worker", "api", "--port", "8000"] and api["environment"]["CF_API_HOST"] == "0.0.0.0"
    assert api["environment"]["CF_DATABASE_URL"] == services["workers"]["environment"]["CF_DATABASE_URL"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "temporal-postgresql" in services["temporal"]["depends_on"]
    workers = services["workers"]
    assert workers["build"]["context"] == str(ROOT)
    env = workers["environment"]
    assert env["CF_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["CF_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "@postgres:5432/" in env["CF_DATABASE_URL"]
    # Signing keys come from a secret file the user generates: no key is written into the file.
    assert "CF_SIGNING_KEYS" not in env and env["CF_SIGNING_KEYS_FILE"] == "/run/secrets/signing-keys"
    assert [s if isinstance(s, str) else s["source"] for s in workers["secrets"]] == ["signing-keys"]
    assert config["secrets"]["signing-keys"]["file"].endswith("signing-keys")


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = [p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"]
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
