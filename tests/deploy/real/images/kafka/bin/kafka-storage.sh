#!/bin/bash
# kafka-storage.sh format --cluster-id ID -c server.properties --ignore-formatted
KAFKA_LOG4J_OPTS=-Dlog4j.configuration=file:/dev/null \
  exec /opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool "$@"
