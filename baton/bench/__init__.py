"""``baton bench``: Baton's own overhead on this machine (``run``), through a server with remote
task servers (``remote``), optionally behind a proxy that adds distance (``delay``), with task
bodies that do nothing or sleep (``tasks``)."""
