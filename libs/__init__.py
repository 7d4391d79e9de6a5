"""Code shared by two or more services: event store, bus, telemetry, errors."""
