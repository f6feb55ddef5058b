"""The bodies both sides of HTTP share: pydantic models only, never FastAPI or Starlette, so a
client or a remote worker can import them without the server's stack.

- ``api``: ``/api/v1`` (events, tasks, attempts, graphs, workers);
- ``workers``: ``/worker/v1`` (claims, reports, heartbeats).
"""
