#!/bin/bash
# As the official image: every KAFKA_* variable (but the JVM options) becomes a line of
# server.properties (KAFKA_LOG_DIRS -> log.dirs; "__" -> "_", "___" -> "-"), KRaft
# storage is formatted on first start with CLUSTER_ID, then the broker runs in the
# foreground. Any arguments replace all that (`docker run ... bash`).
set -euo pipefail
if [ $# -gt 0 ]; then exec "$@"; fi
props=/etc/kafka/docker/server.properties
: >"$props"
while IFS='=' read -r name value; do
  case $name in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_LOG4J_OPTS | KAFKA_JMX_OPTS | KAFKA_TOOLS_HEAP_OPTS \
      | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_VERSION) continue ;;
  esac
  key=${name#KAFKA_}
  key=$(echo "$key" | tr 'A-Z' 'a-z' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
  echo "$key=$value" >>"$props"
done < <(env | grep '^KAFKA_' | sort)
grep -q '^log\.dirs=' "$props" || echo "log.dirs=/var/lib/kafka/data" >>"$props"
if grep -q '^process\.roles=' "$props"; then
  /opt/kafka/bin/kafka-storage.sh format --cluster-id "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" \
    -c "$props" --ignore-formatted
fi
exec /opt/kafka/bin/kafka-server-start.sh "$props"
