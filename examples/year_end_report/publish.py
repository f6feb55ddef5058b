"""Publishing the year-end reports: the ``publish_reports`` graph's one task.

The event centre raises ``publish_reports`` each time a ``year_end_report`` event succeeds
(``publish.yaml``'s ``raised_by``), with that event's year and output folder. This task copies
the reports (``departments/*.html|csv`` and ``hq/company.html|csv``) into
``<publish_dir>/<year>/``, each file atomically, and writes a ``manifest.json`` listing every file
with its SHA-256, last. A rerun copies the same files again and writes the same manifest, so
publishing twice is harmless.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from baton.worker.context import TaskContext
from year_end_report.files import write_json, write_text_atomic

PUBLISHED = ("departments", "hq")


def publish(ctx: TaskContext) -> dict[str, Any]:
    year = ctx.params["year"]
    if isinstance(year, bool) or not isinstance(year, int):
        raise ValueError(f"param year must be an integer, got {year!r}")
    reports = Path(str(ctx.params["reports"])).resolve()
    target = Path(str(ctx.params["publish_dir"])).resolve() / str(year)
    files = sorted(p for folder in PUBLISHED for p in (reports / folder).glob("*") if p.suffix in (".html", ".csv"))
    if not any(p.parent.name == "hq" for p in files):
        raise FileNotFoundError(f"no HQ report under {reports}/hq: has the year-end report for {year} run there?")
    manifest = {}
    for source in files:
        text = source.read_text(encoding="utf-8")
        relative = f"{source.parent.name}/{source.name}"
        write_text_atomic(target / relative, text)
        manifest[relative] = hashlib.sha256(text.encode()).hexdigest()
    write_json(target / "manifest.json", {"year": year, "files": manifest})
    ctx.log(f"published {len(manifest)} files for {year} to {target}")
    return {"year": year, "published": str(target), "files": len(manifest)}
