"""Baton: an event comes in, a configured graph is split into per-partition tasks, task
servers pull what fits their capacity, and the controller advances the graph until the
event is done. See README.md for the architecture and docs/ for the guides."""

__version__ = "0.1.0"
