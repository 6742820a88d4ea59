#!/bin/bash
# kafka-server-start.sh server.properties: the broker (or KRaft controller).
exec /opt/kafka/bin/kafka-run-class.sh kafka.Kafka "$@"
