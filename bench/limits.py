"""Run the concurrency-key scenario of :mod:`baton.bench.limits` and print one JSON line.

python bench/limits.py --partitions 1000 --limit 3 --workers 2 --slots 4
python bench/limits.py --kill-after 300 --lease-s 5     # SIGKILL one worker after 300 tasks
python bench/limits.py --db postgresql://postgres@127.0.0.1:5432/limits
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from baton.bench.limits import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--kill-after", type=int, default=None, help="SIGKILL one worker after this many tasks")
    parser.add_argument("--lease-s", type=float, default=5.0)
    parser.add_argument("--db", default=None, help="a database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-limits-") as folder:
        db = args.db or f"sqlite:///{folder}/baton.db"
        result = measure(db, args.partitions, args.limit, args.workers, args.slots, args.kill_after, args.lease_s,
                         Path(folder) / "logs")  # fmt: skip
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
