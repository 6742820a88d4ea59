#!/bin/bash
# One ZooKeeper server on 2181, data in /data, configured as the official image is.
set -euo pipefail
if [ $# -gt 0 ]; then exec "$@"; fi
cat >/conf/zoo.cfg <<CFG
dataDir=/data
clientPort=2181
tickTime=2000
initLimit=5
syncLimit=2
maxClientCnxns=60
4lw.commands.whitelist=${ZOO_4LW_COMMANDS_WHITELIST:-srvr}
admin.enableServer=${ZOO_ADMINSERVER_ENABLED:-true}
CFG
exec /opt/kafka/bin/kafka-run-class.sh org.apache.zookeeper.server.quorum.QuorumPeerMain /conf/zoo.cfg
