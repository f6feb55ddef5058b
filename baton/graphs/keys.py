"""Concurrency and rate-limit key templates in a graph: the placeholders a key may use, and their
checks (rendering a key for a task is the engine's: :func:`baton.engine.limits.render_key`)."""

from __future__ import annotations

import re
from typing import Any

KEY_PLACEHOLDER_RE = re.compile(r"\{(partition|node|event_type|params\.[A-Za-z_]\w*)\}")
MAX_TEMPLATE_CHARS = 200
MAX_LIMIT = 1_000_000
# A rate limit's bounds: the store keeps one row per start still inside the window, so a key
# holds at most MAX_RATE_LIMIT of them.
MAX_RATE_LIMIT = 100_000
MIN_PERIOD_S = 0.001
MAX_PERIOD_S = 7 * 86_400.0


def template_problems(template: Any, declared: set[str], partitioned: bool) -> list[str]:
    """What is wrong with a key template, one sentence each (empty: nothing)."""
    if not isinstance(template, str) or not template.strip():
        return ["must be a non-empty string"]
    if len(template) > MAX_TEMPLATE_CHARS:
        return [f"must be at most {MAX_TEMPLATE_CHARS} characters"]
    problems = []
    for brace in re.findall(r"\{[^}]*\}", template):
        found = KEY_PLACEHOLDER_RE.fullmatch(brace)
        if found is None:
            problems.append(f"{brace} is not a placeholder (use {{partition}}, {{node}}, {{event_type}} or "
                            "{params.NAME})")  # fmt: skip
        elif found.group(1) == "partition" and not partitioned:
            problems.append("{partition} is used in a node that is not partitioned")
        elif found.group(1).startswith("params.") and found.group(1)[7:] not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(f"unknown parameter '{found.group(1)[7:]}' (declared: {known})")
    return problems
