"""Retention is applied on every start, on the real broker: only the keys that differ are
changed (incremental_alter_configs), what an operator set on other keys stays."""

from __future__ import annotations

import logging
import threading

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from kva import retention
from kva.consumer.config import ConsumerSettings
from kva.consumer.service import ConsumerService
from kva.kafka import TopicSpec, apply_topic_config, client_config, ensure_topics
from kva.producer.config import ProducerSettings
from kva.producer.service import ProducerService
from kva.settings import KafkaSettings

pytestmark = pytest.mark.integration

#: What kva used to create frame topics with: a minute.
OLD = {"retention.ms": "60000", "retention.bytes": str(256 * retention.MIB), "segment.ms": "60000"}


def topic_config(settings: KafkaSettings, topic: str) -> dict[str, str]:
    admin = AdminClient(client_config(settings))
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return {name: entry.value for name, entry in future.result(timeout=20).items()}


def test_only_the_keys_that_differ_change(kafka_settings: KafkaSettings, unique_name: str) -> None:
    ensure_topics(
        kafka_settings, [TopicSpec(unique_name, config=OLD | {"min.compaction.lag.ms": "5"})]
    )
    wanted = retention.FRAMES.topic_config()
    changes = apply_topic_config(kafka_settings, unique_name, wanted)
    assert {key for key, _old, _new in changes} == {"retention.ms", "retention.bytes", "segment.ms"}
    assert ("retention.ms", "60000", "3600000") in changes
    config = topic_config(kafka_settings, unique_name)
    assert {k: config[k] for k in wanted} == wanted
    assert config["min.compaction.lag.ms"] == "5"  # an operator's own key is left alone
    assert apply_topic_config(kafka_settings, unique_name, wanted) == []


def test_the_producer_applies_its_retention_at_start(
    kafka_settings: KafkaSettings, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_topics(kafka_settings, [TopicSpec(unique_name, config=OLD)])
    settings = ProducerSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        source=["testsrc"],
        frames_topic=unique_name,
        produce_retention_ms="2h",
        produce_retention_bytes="512MiB",
        producer_metrics_port=0,
    )
    service = ProducerService(settings)
    with caplog.at_level(logging.INFO, "kva.kafka.admin"):
        try:
            service.start(threading.Event())
        finally:
            service.close()
    config = topic_config(kafka_settings, unique_name)
    assert (config["retention.ms"], config["retention.bytes"]) == (
        "7200000",
        str(512 * retention.MIB),
    )
    assert f"topic {unique_name}: retention.ms 60000 -> 7200000" in caplog.text


def test_the_consumer_applies_the_retention_of_what_it_writes(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    out, meta = f"{unique_name}-out", f"{unique_name}-meta"
    ensure_topics(kafka_settings, [TopicSpec(out, config=OLD), TopicSpec(meta, config=OLD)])
    settings = ConsumerSettings(
        bootstrap_server=kafka_settings.bootstrap_server,
        consume_input_topic=f"{unique_name}-in",
        consume_output_topic=out,
        consume_metadata_topic=meta,
        consume_passthrough=True,
        consume_metrics_port=0,
        consume_metadata_retention_ms="1d",
    )
    service = ConsumerService(settings)
    try:
        service.start(threading.Event())
    finally:
        service.close()
    assert topic_config(kafka_settings, out)["retention.ms"] == str(retention.ANNOTATED.ms)
    assert topic_config(kafka_settings, meta)["retention.ms"] == str(retention.DAY_MS)
    assert topic_config(kafka_settings, meta)["retention.bytes"] == str(retention.PREDICTIONS.bytes)


def test_a_change_the_cluster_refuses_is_a_warning_not_a_failure(
    kafka_settings: KafkaSettings, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_topics(kafka_settings, [TopicSpec(unique_name, config=OLD)])
    with caplog.at_level(logging.WARNING, "kva.kafka.admin"):
        assert apply_topic_config(kafka_settings, unique_name, {"retention.ms": "soon"}) == []
    assert f"topic {unique_name}: cannot set retention.ms=soon" in caplog.text
    assert "keeping the topic's own configs" in caplog.text
    assert topic_config(kafka_settings, unique_name)["retention.ms"] == "60000"
