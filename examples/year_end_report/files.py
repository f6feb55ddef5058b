"""Small file helpers: atomic writes and strict CSV/JSON reading.

Tasks can be retried, time out half-way, or run again for the same department. Writing every
output to a temporary file and renaming it into place means a reader (the next task, or a
person opening the report) never sees a half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (UTF-8) via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def csv_text(fields: Sequence[str], rows: Iterable[Mapping[str, str]]) -> str:
    """Render rows as CSV text with a header line; values must already be strings."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: Path, fields: Sequence[str], rows: Iterable[Mapping[str, str]]) -> Path:
    """Write rows to a CSV file atomically."""
    return write_text_atomic(path, csv_text(fields, rows))


def read_csv(path: Path, fields: Sequence[str]) -> list[dict[str, str]]:
    """Read a CSV file, insisting on the named columns so bad exports fail loudly.

    Extra columns are ignored (source systems add columns over time); missing columns or
    short rows raise ``ValueError`` naming the file and line.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        _check_header(path, reader.fieldnames, fields)
        return [_pick(path, reader.line_num, row, fields) for row in reader]


def _check_header(path: Path, header: Sequence[str] | None, fields: Sequence[str]) -> None:
    """Raise if the CSV header lacks any required column."""
    missing = [name for name in fields if name not in (header or ())]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")


def _pick(path: Path, line: int, row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, str]:
    """Keep the required columns of one CSV row, rejecting rows that end early."""
    picked = {name: row.get(name) for name in fields}
    if any(value is None for value in picked.values()):
        raise ValueError(f"{path}: line {line} has too few values")
    return {name: str(value) for name, value in picked.items()}


def write_json(path: Path, value: Any) -> Path:
    """Write a JSON document atomically (sorted keys keep reruns byte-identical)."""
    return write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON document."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)
