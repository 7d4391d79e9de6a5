"""Offshoot services: each owns its aggregates, handlers, projections and routes."""
