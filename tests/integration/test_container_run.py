"""The image's processes, started as docker-compose.yml starts them, work as the image's user.

No Docker engine runs here, so tests/support/container_run.py repeats the container: the image's
locked install in a root-owned working directory, uid 10001, the image's ENV plus the compose
service's environment (volumes and the signing-keys secret mapped to directories owned as a fresh
named volume would be, host names mapped to the test stack). Each service must pass its own compose
healthcheck, stop cleanly on SIGTERM, and write nowhere but its declared volumes. The negative control
is the image as it was before the state directory had a volume: the worker cannot start.
"""

from __future__ import annotations

import os
import uuid

import pytest

import schemas
from core.settings import Settings, project_root
from tests.support.container_model import compose_config, image_services
from tests.support.container_run import ContainerProcess, ImageInstall

pytestmark = pytest.mark.timeout(900)

#: Paths any process may write that are no file of its own.
_NOT_FILES = ("/dev/null", "/dev/shm/", "/proc/self/")


@pytest.fixture(scope="module")
def install() -> ImageInstall:
    built = ImageInstall(project_root() / ".cloud-factory-test" / "image")
    built.build()
    return built


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config()


def _keys() -> str:
    return "\n".join(schemas.generate_entry(s, f"{s.value}-image-test") for s in schemas.Service) + "\n"


def _process(
    install: ImageInstall,
    config: dict,
    name: str,
    settings: Settings,
    image_env: dict[str, str] | None = None,
) -> ContainerProcess:
    # The saga worker gets a task queue of its own: it must not serve another test's sagas.
    process = ContainerProcess(
        install,
        name,
        image_services(config)[name],
        settings,
        image_env=image_env,
        extra_env={"CF_ORDER_TASK_QUEUE": f"image-{uuid.uuid4().hex[:8]}"},
    )
    process.prepare(_keys())
    return process


def _command_and_healthcheck(service: dict) -> tuple[list[str], list[str]]:
    """The service's command and healthcheck; the API's published port becomes a free one here."""
    command, test = list(service["command"]), list(service["healthcheck"]["test"])
    if "--port" in command:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        published = command[command.index("--port") + 1]
        command[command.index("--port") + 1] = port
        test = [part.replace(f"127.0.0.1:{published}/", f"127.0.0.1:{port}/") for part in test]
    return command, test


@pytest.mark.parametrize("name", ["workers", "api", "dlq-processor"])
def test_the_service_runs_healthy_as_the_images_user_and_writes_only_its_volumes(
    stack, settings: Settings, install: ImageInstall, config: dict, name: str
) -> None:
    service = image_services(config)[name]
    process = _process(install, config, name, settings)
    command, healthcheck = _command_and_healthcheck(service)
    process.start(command)
    try:
        said = process.wait_healthy(healthcheck)
    except BaseException:
        process.stop()
        raise
    assert said.startswith("healthy: pid"), said
    assert process.stop() == 0, process.output()[-3000:]
    volumes = [
        str(here) for target, here in process.paths().items() if not target.startswith("/run/secrets/")
    ]
    written = process.written()
    assert any(path.startswith(volumes[0] + "/workers") for path in written), "no heartbeat was written"
    elsewhere = sorted(
        p
        for p in written
        if not any(p == v or p.startswith(v + "/") for v in volumes) and not p.startswith(_NOT_FILES)
    )
    assert not elsewhere, f"{name} wrote outside its volumes: {elsewhere[:10]}"
    assert "Traceback" not in process.output()


def test_the_image_without_a_state_volume_stops_with_one_line(
    stack, settings: Settings, install: ImageInstall, config: dict
) -> None:
    """The image as it was: no CF_STATE_DIR, so the state directory falls in the root-owned working
    directory. The worker must not start half-alive (threads dying one by one): one line, exit 1."""
    image_env = {k: v for k, v in install.image.env.items() if k != "CF_STATE_DIR"}
    process = _process(install, config, "workers", settings, image_env=image_env)
    process.start(list(image_services(config)["workers"]["command"]))
    assert process.process is not None and process.process.wait(60) == 1
    lines = process.output().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the state directory "), lines[:5]
    assert f"{install.app}/.cloud-factory is not writable by uid 10001" in lines[0]
    assert not (install.app / ".cloud-factory").exists()


def test_the_worker_refuses_a_signing_keys_file_it_cannot_read(
    stack, settings: Settings, install: ImageInstall, config: dict
) -> None:
    process = _process(install, config, "dlq-processor", settings)
    keys = process.paths()["/run/secrets/signing-keys"]
    os.chown(keys, 0, 0)  # as mounted from the host without the README's chown
    process.start(["dlq", "run"])
    assert process.process is not None and process.process.wait(60) == 1
    output = process.output().strip().splitlines()
    assert output and output[-1].startswith("error: ") and "cannot read signing keys file" in output[-1], (
        output
    )
    assert "Traceback" not in process.output()
