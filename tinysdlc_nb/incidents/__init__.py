"""Incidents: an append-only timeline per incident, adapters for alert payloads, metrics,
SLA targets and postmortems."""
