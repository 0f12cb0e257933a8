"""Importers and live collectors: everything that writes telemetry into the store."""
