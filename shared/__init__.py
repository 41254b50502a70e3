"""Ripples' common library: contract events, CloudEvents bindings, settings, Kafka and
PostgreSQL helpers, HTTP and metrics pieces, JSON logs. Every service imports it."""
