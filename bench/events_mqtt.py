"""Events per second of ``kva events`` to MQTT (QoS 1, every PUBACK awaited, offsets committed).

Runs the sink (in this process, the real service: consumer group, batches, paho,
commits) against a real Mosquitto started here; once it has joined its group,
produces ``--count`` events onto its fresh topic and times until every event is
committed. A subscriber counts what arrived. Prints events/s and the process CPU
per event (sink, producer and subscriber together).

Uses ``KVA_BOOTSTRAP_SERVER`` when set, else starts a throw-away Kafka. Needs
Debian's ``mosquitto`` (``scripts/setup.sh test`` installs it).

    python bench/events_mqtt.py [--count 20000] [--max-in-flight 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kva.events import Event, FrameRef  # noqa: E402
from kva.kafka import EVENT_TOPIC_CONFIG, FrameProducer, TopicSpec, ensure_topics  # noqa: E402
from kva.settings import KafkaSettings  # noqa: E402
from kva.sink.config import EventsSettings  # noqa: E402
from kva.sink.service import EventsService  # noqa: E402
from testbed.kafka import broker  # noqa: E402
from testbed.mqtt import Mosquitto, MqttCollector  # noqa: E402


def event(n: int) -> Event:
    return Event(
        type="line_cross", stream=f"cam{n % 8}", seq=n, capture_ns=time.time_ns(), track=n,
        label="person", box=(0.1, 0.2, 0.3, 0.6), line="walkway",
        direction="in" if n % 2 else "out", counts={"in": n, "out": n},
        frame=FrameRef("frames", 0, n),
    )  # fmt: skip


def produce(settings: KafkaSettings, topic: str, count: int) -> None:
    producer = FrameProducer(settings, acks="all", linger_ms=20)
    for n in range(count):
        e = event(n)
        producer.send(topic, e.stream.encode(), e.to_json().encode())
    if producer.flush(120):
        raise SystemExit("Kafka did not take every event")


def committed(sink: EventsService) -> float:
    value = sink.metrics.registry.get_sample_value("kva_events_committed_total")
    return value or 0.0


def run(bootstrap: str, count: int, max_in_flight: int) -> None:
    settings = KafkaSettings(bootstrap_server=bootstrap)
    topic = f"bench-events-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [TopicSpec(topic, partitions=4, config=EVENT_TOPIC_CONFIG)])
    with tempfile.TemporaryDirectory() as folder:
        mosquitto = Mosquitto(Path(folder))
        collector = MqttCollector(mosquitto.port, "kva/#")
        sink = EventsService(
            EventsSettings(
                bootstrap_server=bootstrap, events_topic=topic, events_group=f"{topic}-g",
                events_dead_letter_topic=f"{topic}.dead", events_mqtt=mosquitto.url,
                events_metrics_port=0, events_max_in_flight=max_in_flight,
            )
        )  # fmt: skip
        stop = threading.Event()
        try:
            sink.start(stop)
            thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
            thread.start()
            while not sink.ready():  # joined the group: the clock starts with the events
                time.sleep(0.05)
            cpu0, t0 = os.times(), time.monotonic()
            produce(settings, topic, count)
            while committed(sink) < count:
                if time.monotonic() - t0 > 600:
                    raise SystemExit(f"only {committed(sink):.0f} of {count} committed")
                time.sleep(0.01)
            elapsed = time.monotonic() - t0
            cpu1 = os.times()
            deadline = time.monotonic() + 30
            while len(collector.snapshot()) < count and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            sink.close()
            collector.close()
            mosquitto.stop()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    received = len({m.payload for m in collector.snapshot()})
    print(f"kva events -> MQTT: {count} events in {elapsed:.2f}s = {count / elapsed:.0f} events/s")
    print(f"  received by the subscriber: {received}; max in flight {max_in_flight}")
    per_event = cpu / count * 1e6
    print(f"  process CPU {cpu:.2f}s = {per_event:.0f} us/event (sink, producer and subscriber)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--max-in-flight", type=int, default=256)
    args = parser.parse_args()
    with broker() as bootstrap:
        run(bootstrap, args.count, args.max_in_flight)


if __name__ == "__main__":
    main()
