"""Adapters: database, Redis, queue, settings, telemetry and the embedded services."""
