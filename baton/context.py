"""``baton.context.TaskContext``, as task code imports it; it lives in :mod:`baton.worker.context`."""

from baton.worker.context import TaskContext

__all__ = ["TaskContext"]
