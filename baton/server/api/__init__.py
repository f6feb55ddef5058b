"""The ``/api/v1`` routes, for applications and people: events (``events``), graphs, tasks,
attempts and workers (``catalog``), webhooks, schedules and calendars (``schedules``), backfills."""
