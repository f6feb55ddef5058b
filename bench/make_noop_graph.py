"""Write the year-end-report shape with no-op task bodies for P departments (6P + 2 tasks).

    python bench/make_noop_graph.py 1000 > /tmp/noop1000.yaml
    baton run /tmp/noop1000.yaml --db sqlite:////tmp/noop.db --json

Until ``baton bench`` lands, this is how the scale figures in the closing notes were measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def graph_yaml(partitions: int, body: str = "noop:noop") -> str:
    departments = json.dumps([f"d{i}" for i in range(partitions)])
    nodes = {
        "extract_finance": [], "extract_erp": [], "extract_crm": [],
        "process": ["extract_finance", "extract_erp", "extract_crm"], "summarize": ["process"],
        "dept_report": ["summarize"], "hq_summary": ["summarize"], "hq_report": ["hq_summary"],
    }  # fmt: skip
    lines = [
        f"graph: noop_p{partitions}",
        f"python_path: [{json.dumps(str(BENCH_DIR))}]",
        f"params:\n  departments: {{type: list, default: {departments}}}",
        "partitions: {param: departments}",
        "nodes:",
    ]
    for name, after in nodes.items():
        unpartitioned = ", partitioned: false" if name.startswith("hq_") else ""
        lines.append(f'  {name}: {{run: "{body}", after: {json.dumps(after)}{unpartitioned}}}')
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(graph_yaml(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
