"""Task bodies for the command-line acceptance tests (``tests/acceptance/test_cli_*.py``)."""

from __future__ import annotations

from typing import Any


def greet(ctx: Any) -> dict[str, Any]:
    """Prints and logs a line naming its partition, so ``baton logs`` has something to show."""
    print(f"greeting {ctx.partition} for {ctx.params.get('year')}")
    ctx.log(f"greeted {ctx.partition}")
    return {"partition": ctx.partition, "year": ctx.params.get("year")}


def collect(ctx: Any) -> dict[str, Any]:
    return {"inputs": sorted(ctx.inputs)}


def boom(ctx: Any) -> None:
    raise RuntimeError(f"ledger does not balance ({ctx.node} attempt {ctx.attempt})")


def chatter(ctx: Any) -> dict[str, Any]:
    """Writes 5,000 bytes to stdout, more than a small ``max_log_bytes`` keeps."""
    import sys

    sys.stdout.write("x" * 5000)
    return {"wrote": 5000}
