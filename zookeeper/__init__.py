"""The broker layer: resolve Apache Kafka (and ZooKeeper) with Maven, run a real cluster."""
