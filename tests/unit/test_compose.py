"""docker-compose.yml (and its three-broker profile) checked offline, as a user with Docker would run it.

No Docker engine runs here: the file is validated by Debian's docker-compose and against the Compose
specification's JSON Schema, and then read service by service — what each process would find in its
container (tests/support/container_model.py). Each check has a negative control showing it can fail.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import yaml

from cloud_factory.stack.temporal import SEARCH_ATTRIBUTES
from core.settings import Settings
from tests.support.container_model import (
    COMPOSE_FILES,
    COMPOSE_SPEC,
    ROOT,
    Dockerfile,
    compose_command,
    compose_config,
    image_services,
    settings_problems,
)

PROFILES = sorted(COMPOSE_FILES)
#: An exact release: major.minor.patch, or major.minor where that is a release (PostgreSQL's 16.10).
EXACT_TAG = re.compile(r"^[\w./-]+:\d+\.\d+(\.\d+)?(-[\w.-]+)?(@sha256:[0-9a-f]{64})?$")


@pytest.fixture(scope="module")
def image() -> Dockerfile:
    return Dockerfile.read()


@pytest.fixture(scope="module", params=PROFILES)
def config(request: pytest.FixtureRequest) -> dict:
    return compose_config(request.param)


def test_every_profile_is_valid_for_docker_compose(config: dict) -> None:
    assert {
        "kafka",
        "temporal",
        "temporal-schema",
        "temporal-namespace",
        "temporal-postgresql",
        "temporal-ui",
        "postgres",
        "workers",
        "api",
        "dlq-processor",
    } <= set(config["services"])


def test_without_an_env_file_compose_names_the_missing_password() -> None:
    result = compose_command("default", None, "config")
    assert result.returncode != 0 and re.search(r"set CF_\w*PG_PASSWORD in .env", result.stderr)


@pytest.mark.parametrize("profile", PROFILES)
def test_the_files_satisfy_the_compose_specification_schema(profile: str) -> None:
    schema = json.loads(COMPOSE_SPEC.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    for name in COMPOSE_FILES[profile]:
        raw = yaml.safe_load((ROOT / name).read_text())
        errors = sorted(validator.iter_errors(raw), key=lambda e: e.path)
        assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    merged = compose_config(profile)
    assert not list(validator.iter_errors(merged))
    broken = copy.deepcopy(merged)
    broken["services"]["workers"]["healthcheck"]["retries"] = "three"
    broken["services"]["api"]["restrat"] = "always"
    assert len(list(validator.iter_errors(broken))) == 2, "the schema must reject a broken copy"


def test_each_image_service_finds_every_setting_in_its_container(config: dict, image: Dockerfile) -> None:
    services = image_services(config)
    assert set(services) == {"workers", "api", "dlq-processor"}
    for name in services:
        assert settings_problems(config, name, image) == [], name


def test_a_setting_left_to_its_host_default_is_named(image: Dockerfile) -> None:
    config = compose_config()
    for variable in ("CF_KAFKA_BOOTSTRAP", "CF_TEMPORAL_ADDRESS", "CF_DATABASE_URL", "CF_SIGNING_KEYS_FILE"):
        broken = copy.deepcopy(config)
        del broken["services"]["workers"]["environment"][variable]
        assert settings_problems(broken, "workers", image), f"{variable} missing went unnoticed"
    broken = copy.deepcopy(config)
    broken["services"]["api"]["volumes"] = []
    assert any("state directory" in p for p in settings_problems(broken, "api", image))
    broken = copy.deepcopy(config)
    del broken["services"]["api"]["environment"]["CF_API_HOST"]
    assert any("listens on 127.0.0.1" in p for p in settings_problems(broken, "api", image))
    broken = copy.deepcopy(config)
    broken["services"]["workers"]["environment"]["CF_SIGNING_MODE"] = "development"
    assert any("signing mode" in p for p in settings_problems(broken, "workers", image))
    unwritable = Dockerfile.read()
    del unwritable.env["CF_STATE_DIR"]  # the state directory falls back to the working directory
    assert any("state directory" in p for p in settings_problems(config, "workers", unwritable))


def test_every_process_has_a_healthcheck_and_the_image_services_use_the_heartbeat(config: dict) -> None:
    one_shots = {"temporal-schema", "temporal-namespace"}
    for name, service in config["services"].items():
        if name in one_shots:
            assert service.get("restart") == "no"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name, service in image_services(config).items():
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "cloud-factory", "health"] or (
            test[0] == "CMD-SHELL" and test[1].startswith("cloud-factory health")), name
        assert service["restart"] == "unless-stopped"
    assert config["services"]["dlq-processor"]["command"] == ["dlq", "run"]
    assert config["services"]["dlq-processor"]["healthcheck"]["test"][-2:] == ["--kind", "dlq"]
    api = config["services"]["api"]
    assert "http://127.0.0.1:8000/healthz" in api["healthcheck"]["test"][1], "the API must answer HTTP"
    assert api["command"][-1] == "8000"


def test_workers_start_after_the_namespace_and_its_search_attributes(config: dict) -> None:
    for service in image_services(config).values():
        assert service["depends_on"]["temporal-namespace"]["condition"] == "service_completed_successfully"
    namespace = config["services"]["temporal-namespace"]
    assert namespace["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert (
        config["services"]["temporal"]["depends_on"]["temporal-schema"]["condition"]
        == "service_completed_successfully"
    )
    registered = dict(pair.split("=") for pair in namespace["environment"]["CF_SEARCH_ATTRIBUTES"].split())
    assert registered == SEARCH_ATTRIBUTES
    assert "|| true" not in (ROOT / "compose" / "temporal-namespace.sh").read_text()


def test_kafka_keeps_its_log_dirs_on_its_volume_and_has_a_host_listener(config: dict) -> None:
    brokers = {n: s for n, s in config["services"].items() if s.get("image", "").startswith("apache/kafka:")}
    assert len(brokers) == (3 if "kafka-3" in config["services"] else 1)
    voters = {s["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for s in brokers.values()}
    assert len(voters) == 1 and voters.pop().count("@") == len(brokers)
    for name, broker in brokers.items():
        env = broker["environment"]
        source, target = broker["volumes"][0].split(":")[:2]
        assert env["KAFKA_LOG_DIRS"] == target and source in config["volumes"], name
        published = {int(p["published"]) for p in broker["ports"]}
        advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        host_port = int(advertised["HOST"].removeprefix("localhost:"))
        assert advertised["HOST"].startswith("localhost:") and host_port in published, name
        assert advertised["INTERNAL"] == f"{name}:29092"
    if len(brokers) == 3:
        workers = config["services"]["workers"]["environment"]
        assert workers["CF_KAFKA_REPLICATION_FACTOR"] == 3 and workers["CF_KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert all(b["environment"]["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3 for b in brokers.values())


def test_the_host_ports_are_the_local_stacks_defaults(config: dict) -> None:
    defaults = Settings.model_fields
    published = {
        name: {int(p["published"]) for p in s.get("ports", [])} for name, s in config["services"].items()
    }
    assert defaults["kafka_port"].default in published["kafka"]
    assert defaults["temporal_port"].default in published["temporal"]
    assert defaults["temporal_ui_port"].default in published["temporal-ui"]
    assert defaults["pg_port"].default in published["postgres"]
    assert defaults["api_port"].default in published["api"]
    assert not published.get("temporal-postgresql"), "Temporal's own database needs no host port"


def test_images_are_pinned_and_kafka_matches_the_local_stack(config: dict, image: Dockerfile) -> None:
    images = {s["image"] for s in config["services"].values() if "image" in s and "build" not in s}
    for name in [*images, image.base]:
        assert EXACT_TAG.match(name), f"{name} is not pinned to an exact version"
    pom = ET.parse(ROOT / "cloud_factory" / "stack" / "resources" / "pom.xml")
    kafka_version = pom.find(".//{http://maven.apache.org/POM/4.0.0}kafka.version").text
    assert {i for i in images if i.startswith("apache/kafka:")} == {f"apache/kafka:{kafka_version}"}
    assert not EXACT_TAG.match("postgres:16") and not EXACT_TAG.match("temporalio/ui:latest")


def test_no_signing_key_or_password_is_written_into_the_compose_files() -> None:
    for name in ("docker-compose.yml", "docker-compose.cluster.yml"):
        text = (ROOT / name).read_text()
        assert "CF_SIGNING_KEYS:" not in text
        assert not re.search(r"POSTGRES_PASSWORD: (?!\$\{)", text), f"{name} has a literal password"
    example = (ROOT / ".env.example").read_text()
    for variable in ("CF_PG_PASSWORD", "CF_TEMPORAL_PG_PASSWORD", "CF_SIGNING_KEYS_HOST_FILE"):
        assert re.search(rf"^{variable}=", example, re.M), variable
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored and "signing-keys" in ignored


def test_the_one_shot_scripts_are_strict_posix_shell() -> None:
    import subprocess

    for script in sorted((ROOT / "compose").glob("*.sh")):
        text = script.read_text()
        assert text.startswith("#!/bin/sh\n") and "\nset -eu\n" in text, script.name
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script.name
