"""sinks: ClickHouse history: the store, ingestion from Kafka, reports."""
