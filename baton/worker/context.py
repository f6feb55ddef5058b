"""What a running task sees: the contract between Baton and task code.

Python callables named in a graph (``run: package.module:function``) are called with one
argument, a :class:`TaskContext`, and return a JSON-serialisable value (or ``None``).

Argv commands (``command: [...]``) get the same information through environment variables,
named by the ``ENV_*`` constants below, and files: the parameters and the upstream results are
JSON files (``BATON_PARAMS_FILE``, ``BATON_INPUTS_FILE``), so their size never meets the
operating system's cap on the environment. A command that wants to return a result writes JSON
to the file named by ``BATON_RESULT_FILE``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_EVENT_ID = "BATON_EVENT_ID"
ENV_EVENT_TYPE = "BATON_EVENT_TYPE"
ENV_NODE = "BATON_NODE"
ENV_PARTITION = "BATON_PARTITION"
ENV_ATTEMPT = "BATON_ATTEMPT"
ENV_PARAMS_FILE = "BATON_PARAMS_FILE"  # path of a JSON file holding the event's parameters (an object)
ENV_INPUTS_FILE = "BATON_INPUTS_FILE"  # path of a JSON file holding the upstream results
ENV_RESULT_FILE = "BATON_RESULT_FILE"  # path where the command may write its JSON result


@dataclass(frozen=True)
class TaskContext:
    """Everything a task needs to know about the work it was given.

    ``inputs`` maps each upstream node to its result. For a ``same`` or ``broadcast``
    dependency the value is that one task's result; for an ``all`` dependency (fan-in) it is a
    mapping ``{partition: result}`` over every partition of the upstream node.
    """

    event_id: int
    event_type: str
    node: str
    partition: str | None
    attempt: int
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        """Write a timestamped line to this attempt's captured log (stderr)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        print(f"{stamp} {self.node}[{self.partition or '-'}] {message}", file=sys.stderr, flush=True)
