"""`messaging`'s public face: every name of `__all__` resolves, importing the package costs no Kafka
client or database driver, and the DLQ topic rule is the one of `schemas`."""

from __future__ import annotations

import re
import subprocess
import sys

import messaging
import schemas


def test_every_public_name_resolves_from_the_package() -> None:
    for name in messaging.__all__:
        assert getattr(messaging, name) is not None, name
    assert sorted(messaging.__all__) == sorted(set(messaging.__all__))


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        messaging.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("messaging.NoSuchThing resolved")


def test_importing_messaging_loads_no_kafka_client_and_no_database_driver() -> None:
    probe = ("import sys, messaging; "
             "print(sorted(m for m in ('confluent_kafka', 'sqlalchemy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_services_see_the_handler_types_of_the_face() -> None:
    from messaging.handlers import HandlerContext, HandlerSpec

    assert messaging.HandlerContext is HandlerContext and messaging.HandlerSpec is HandlerSpec


def test_the_dlq_topic_rule_is_one() -> None:
    topic = schemas.topic_for("order.created", env="staging")
    dlq = schemas.dlq_topic_for("order.created", env="staging")
    assert schemas.dlq_topic_of(topic) == dlq == schemas.dlq_topic_of(dlq)  # dead letters do not nest
    assert schemas.is_dlq_topic(dlq) and schemas.is_dlq_topic(dlq, "staging")
    assert not schemas.is_dlq_topic(dlq, "stag") and not schemas.is_dlq_topic(topic)
    pattern = re.compile(schemas.dlq_topics_pattern("staging"))
    assert pattern.match(dlq) and not pattern.match(topic)
    assert not pattern.match(schemas.dlq_topic_for("order.created", env="dev"))
    assert schemas.parse_topic(dlq).dlq
