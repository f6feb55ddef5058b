"""Clients of ``baton server``: the remote worker's link (:mod:`baton.remote.link`) and the
calls they share (:mod:`baton.remote.http`). They need a URL and a token, never a database."""
