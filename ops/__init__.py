"""The HTTP API beside the webhook receiver: the Service API (jobs, schedules) with its token guard
and OpenAPI; the ops routes, dashboard and metrics join it in later issues."""
