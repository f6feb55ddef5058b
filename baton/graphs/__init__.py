"""The graph language: what users write, validated at load.

- ``model``: the graph as data (nodes, partitions, commands, resources);
- ``spec``: YAML and dicts to a :class:`~baton.graphs.model.Graph`, with file, path and line in
  every message; ``yamlload``: the bounded YAML reader under it;
- ``builder``: the Python API producing the same model (``baton.builder`` re-exports it);
- ``params``: an event's parameters, their declared types and limits;
- ``schedules``: a graph's ``schedules:`` (cron or interval, zone, calendar rules, catch-up,
  templates) validated into the graph's problems; ``calendars``: business calendars, documents
  of their own.

Imports only the core (errors, settings); never the store, a process or HTTP.
"""
