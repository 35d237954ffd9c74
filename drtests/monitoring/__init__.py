"""Monitoring: restore progress pushed to a Pushgateway, post-restore health from the
Prometheus HTTP API, and the runbooks' alert rules."""
