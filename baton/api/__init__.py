"""The HTTP server's app (``baton server``): ``/api/v1`` for applications and people,
``/worker/v1`` for remote task servers. :func:`baton.api.app.create_app` builds it over an open
store; importing this package imports nothing else, so a remote worker can use the wire models
(:mod:`baton.api.worker_wire`) without the server's stack."""
