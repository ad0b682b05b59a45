"""Pure pieces of the local stack."""

from __future__ import annotations

import re
import uuid

import pytest

from cloud_factory.stack import kafka


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage tool reads `-t -abc…` as an option; a leading dash is drawn again."""
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # first six bits 62 → "-" in url-safe base64
    fine = uuid.UUID(bytes=b"\x10" + bytes(15))
    draws = iter([dashed, dashed, fine])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = kafka.new_cluster_id()
    assert cluster_id == "EAAAAAAAAAAAAAAAAAAAAA" and next(draws, None) is None


def test_cluster_ids_are_22_url_safe_characters() -> None:
    ids = {kafka.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cluster_id) for cluster_id in ids)


def test_stack_up_writes_one_private_key_per_service_once(tmp_path) -> None:
    import stat

    import schemas
    from core.settings import Settings
    from messaging.signing_keys import ensure_development_keys, load_keyring

    settings = Settings(state_dir=tmp_path / "state", signing_keys="", signing_keys_file=None)
    path = ensure_development_keys(settings)
    assert path == settings.development_keys_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = load_keyring(settings)  # also proves no two services share a secret
    assert set(ring.services()) == set(schemas.Service) and len(ring) == len(schemas.Service)
    first = path.read_text()
    assert ensure_development_keys(settings) == path and path.read_text() == first  # kept, never rotated
    for service in schemas.Service:
        assert ring.as_signer(service).signing_key_id.startswith(f"{service.value}-dev-")
    own = Settings(state_dir=tmp_path / "other", signing_keys="order/k:s", signing_keys_file=None)
    assert ensure_development_keys(own) is None and not own.development_keys_path.exists()


def test_one_broker_keeps_its_ports_and_needs_no_replication() -> None:
    from core.settings import Settings

    one = Settings.model_construct()
    assert one.kafka_broker_ports == [9092] and one.kafka_controller_ports == [9093]
    assert one.bootstrap_servers == "127.0.0.1:9092"
    assert (one.replication_factor, one.min_insync_replicas) == (1, 1)
    assert [node.name for node in kafka.kafka_nodes(one)] == ["kafka"]


def test_three_brokers_on_consecutive_ports_three_replicas_two_in_sync() -> None:
    from core.settings import Settings

    three = Settings(kafka_brokers=3, kafka_port=19092, kafka_controller_port=None)
    assert three.kafka_broker_ports == [19092, 19093, 19094]
    assert three.kafka_controller_ports == [19095, 19096, 19097]  # right after the client ports
    assert three.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert (three.replication_factor, three.min_insync_replicas) == (3, 2)
    nodes = kafka.kafka_nodes(three)
    assert [(n.name, n.ports) for n in nodes] == [("kafka-1", [19092, 19095]), ("kafka-2", [19093, 19096]),
                                                 ("kafka-3", [19094, 19097])]
    five = Settings(kafka_brokers=5, kafka_controller_port=None)
    assert (five.replication_factor, five.min_insync_replicas) == (3, 2)  # three replicas are enough
    assert (Settings(kafka_brokers=2, kafka_controller_port=None).min_insync_replicas) == 1
    explicit = Settings(kafka_brokers=3, kafka_replication_factor=2, kafka_min_insync_replicas=2,
                        kafka_controller_port=None)
    assert (explicit.replication_factor, explicit.min_insync_replicas) == (2, 2)


def test_three_brokers_share_one_voter_set_and_replicate_internal_topics(tmp_path) -> None:
    from core.settings import Settings

    three = Settings(state_dir=tmp_path, kafka_brokers=3, kafka_port=19092, kafka_controller_port=None)
    nodes = kafka.kafka_nodes(three)
    identities = {node._cluster_identity() for node in nodes}
    assert len(identities) == 1  # every node is formatted with the same cluster id and voters
    [(_, voters)] = identities
    assert [v.rsplit(":", 1)[0] for v in voters.split(",")] == [
        "1@127.0.0.1:19095", "2@127.0.0.1:19096", "3@127.0.0.1:19097"]
    for node in nodes:
        node._write_config()
        props = dict(line.split("=", 1)
                     for line in (node.home / "server.properties").read_text().splitlines())
        assert props["node.id"] == str(node.node)
        assert (props["controller.quorum.bootstrap.servers"]
                == "127.0.0.1:19095,127.0.0.1:19096,127.0.0.1:19097")
        assert props["offsets.topic.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
        assert props["transaction.state.log.min.isr"] == "2"


def test_controller_ports_inside_the_client_ports_are_refused_in_one_line() -> None:
    from cloud_factory.stack import StackError
    from core.settings import Settings

    clash = Settings(kafka_brokers=3, kafka_port=19092, kafka_controller_port=19093)
    with pytest.raises(StackError, match=r"^kafka: controller port\(s\) \[19093, 19094\] collide") as caught:
        kafka.kafka_nodes(clash)[0].check_prerequisites()
    assert "\n" not in str(caught.value) and "CF_KAFKA_CONTROLLER_PORT" in str(caught.value)
