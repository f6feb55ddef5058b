"""``baton server``: the HTTP app over an open store.

- ``app``: :func:`~baton.server.app.create_app`, which assembles everything below;
- ``serve``: uvicorn, TLS rules, the process; ``connections``: the connection guard;
- ``door``, ``bodies``, ``auth``, ``problems``: the front door (identity before work, body
  caps and budget, tokens and roles, bounded error bodies);
- ``state``: what routes share; ``changes``: long polls; ``gathering``: claims batched into
  one transaction; ``metrics``: Prometheus collectors and ``/metrics``;
- ``submits``: submitting an event, for the API and the UI's form alike;
- ``api/``: the ``/api/v1`` routes; ``workers``: the ``/worker/v1`` routes; ``ui/``: the web UI.

Importing this package imports nothing else.
"""
