"""Ops side: admin HTTP API, dashboard, metrics (a later issue builds it)."""
