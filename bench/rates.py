"""Run the rate-limit scenario of :mod:`baton.bench.rates` and print one JSON line.

python bench/rates.py --partitions 200 --limit 20 --period-s 1 --workers 2 --slots 4
python bench/rates.py --db postgresql://postgres@127.0.0.1:5432/rates
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from baton.bench.rates import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=200)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--period-s", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--db", default=None, help="a database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-rates-") as folder:
        db = args.db or f"sqlite:///{folder}/baton.db"
        result = measure(
            db, args.partitions, args.limit, args.period_s, args.workers, args.slots, Path(folder) / "logs"
        )
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
