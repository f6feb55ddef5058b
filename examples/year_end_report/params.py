"""The graph's parameters, validated once, for the Python tasks and the HQ command alike.

Parameters arrive as JSON (in ``TaskContext.params`` or the file named by ``BATON_PARAMS_FILE``), so they
are checked here rather than trusted: a department slug becomes part of file paths, and a
typo'd year should fail the first task, not produce an empty report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from year_end_report.company import DEFAULT_DEPARTMENTS, DEFAULT_YEAR, check_slug

# Same defaults as graph.yaml, for hand-run tasks that pass only some parameters.
DEFAULT_OUT_DIR = "year_end_report_out"


@dataclass(frozen=True)
class Params:
    """Validated parameters; ``out_dir`` is absolute (resolved against the process's cwd)."""

    year: int
    departments: tuple[str, ...]
    out_dir: Path
    source_dir: str

    def work_dir(self, department: str) -> Path:
        """Where a department's intermediate files go."""
        return self.out_dir / "work" / check_slug(department)


def read_params(raw: Mapping[str, Any]) -> Params:
    """Validate raw parameters; missing ones take graph.yaml's defaults."""
    out_dir = raw.get("out_dir", DEFAULT_OUT_DIR)
    source_dir = raw.get("source_dir", "")
    if not isinstance(out_dir, str) or not out_dir:
        raise ValueError(f"param out_dir must be a non-empty string, got {out_dir!r}")
    if not isinstance(source_dir, str):
        raise ValueError(f"param source_dir must be a string, got {source_dir!r}")
    return Params(
        _year(raw.get("year", DEFAULT_YEAR)),
        _departments(raw.get("departments", DEFAULT_DEPARTMENTS)),
        Path(out_dir).resolve(),
        source_dir,
    )


def _year(value: Any) -> int:
    """A plausible fiscal year, given as a number or a string of digits."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if type(value) is not int or not 1900 <= value <= 2999:
        raise ValueError(f"param year must be a year such as 2025, got {value!r}")
    return value


def _departments(value: Any) -> tuple[str, ...]:
    """Department slugs, as a list or a comma-separated string; at least one, no repeats."""
    if isinstance(value, str):
        value = [name.strip() for name in value.split(",") if name.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"param departments must be a non-empty list, got {value!r}")
    names = tuple(check_slug(name) if isinstance(name, str) else _not_slug(name) for name in value)
    if len(set(names)) != len(names):
        raise ValueError(f"param departments lists a department twice: {list(names)}")
    return names


def _not_slug(value: Any) -> str:
    """Reject a non-string department entry."""
    raise ValueError(f"department names must be strings, got {value!r}")
