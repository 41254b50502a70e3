"""The ingest service: other systems' events into Kafka, validated, as CloudEvents."""
