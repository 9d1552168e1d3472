"""racklab's Kafka: a replicated broker speaking Kafka's wire protocol, so
kafka-python, aiokafka and confluent-kafka (librdkafka) work unmodified.
Cluster coordination through ZooKeeper, laid out as Kafka 2.x did."""
