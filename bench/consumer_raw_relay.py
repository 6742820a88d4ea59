"""A minimal raw confluent-kafka relay (consume -> produce the same bytes), the reference
for the passthrough benchmark. Not a service: no envelope, no metrics, no latest-frame seek.

    python bench/consumer_raw_relay.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC
"""

from __future__ import annotations

import signal
import sys
import uuid

from confluent_kafka import Consumer, Producer


def main() -> None:
    bootstrap, source, target = sys.argv[1:4]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-relay-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 17 * 1024 * 1024,
            "fetch.wait.max.ms": 50,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "1",
            "linger.ms": 1,
            "message.max.bytes": 17 * 1024 * 1024,
            "compression.type": "none",
        }
    )
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    consumer.subscribe([source], on_assign=lambda *_: print("assigned [(", flush=True))
    while running[0]:
        msg = consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        producer.produce(target, value=msg.value(), key=msg.key(), headers=msg.headers())
        producer.poll(0)
    producer.flush(10)
    consumer.close()


if __name__ == "__main__":
    main()
