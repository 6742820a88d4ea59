"""The broker dies and comes back: the consumer neither crashes nor gets stuck."""

from __future__ import annotations

import pytest

from kva.kafka import TopicSpec, ensure_topics
from kva.settings import KafkaSettings
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster
from tests.consumer.conftest import consumer_settings, running_consumer
from tests.support.kafka import Feeder, Reader, Topics
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_consumer_resumes_after_broker_restart(model_servers, unique_name, tmp_path) -> None:
    server = model_servers(latency=0.01)
    spec = ClusterSpec(mode="kraft", port=0, data_dir=tmp_path / "kafka")
    with KafkaCluster(spec) as cluster:
        kafka = KafkaSettings(bootstrap_server=cluster.bootstrap_server, broker_timeout=30)
        topics = Topics("frames", "annotated", "predictions")
        ensure_topics(kafka, [TopicSpec(t, partitions=1) for t in vars(topics).values()])
        settings = consumer_settings(
            kafka, topics, unique_name, consume_models=[f"m={server.url()}"]
        )
        with running_consumer(settings) as service:
            reader = Reader(kafka, topics.metadata, f"{unique_name}-reader")
            feeder = Feeder(kafka, topics.input, fps=20).start()
            try:
                wait_for(lambda: reader.count() >= 10, 30, "frames before the restart")
                cluster.kill_broker(0)
                wait_for(
                    lambda: service.healthy(), 5, "the consumer loop to turn with the broker down"
                )
                before = reader.count()
                cluster.start_broker(0)
                cluster.wait_ready(90)
                wait_for(lambda: reader.count() >= before + 20, 60, "frames after the restart")
                assert service.healthy()
            finally:
                feeder.stop()
                reader.close()
