"""One machine: local task-server processes (``workers``) and the development stack of server,
controller and workers in one command (``stack``, behind ``baton dev``)."""
