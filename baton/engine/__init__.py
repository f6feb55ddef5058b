"""The pure rules: no I/O, no SQL, no clock.

- ``states``: one enum per entity (event, task, attempt) and the table of legal moves;
- ``planner``: an event and its graph to tasks and edges, and the critical path;
- ``diagnose``: why a ready task has not started (no worker with the labels or resources);
- ``fires``: when a schedule fires (calendars, catch-up, deadlines, templates), given the instants;
  ``wallclock``: the daylight-saving rule and a schedule's raw fires under it.
"""
