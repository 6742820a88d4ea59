#!/bin/bash
# kafka-run-class.sh CLASS ARGS...: a JVM on the jars in /opt/kafka/libs.
set -e
: "${KAFKA_HEAP_OPTS:=-Xmx256m -Xms256m}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j.configuration=file:/opt/kafka/config/log4j.properties}"
# shellcheck disable=SC2086  # the *_OPTS variables are lists of options
exec java $KAFKA_HEAP_OPTS -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  $KAFKA_LOG4J_OPTS ${KAFKA_OPTS:-} -cp '/opt/kafka/libs/*' "$@"
