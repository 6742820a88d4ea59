#!/bin/bash
# kafka-broker-api-versions.sh --bootstrap-server HOST:PORT: exits 0 once the broker answers.
KAFKA_HEAP_OPTS=${KAFKA_TOOLS_HEAP_OPTS:--Xmx64m} \
KAFKA_LOG4J_OPTS=-Dlog4j.configuration=file:/dev/null \
  exec /opt/kafka/bin/kafka-run-class.sh kafka.admin.BrokerApiVersionsCommand "$@"
