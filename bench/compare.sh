#!/usr/bin/env bash
# Interleaved before/after medians of `baton bench` for a change, on SQLite or PostgreSQL.
#
#   git worktree add /tmp/before <commit-before-the-change>
#   bench/compare.sh /tmp/before 3            # SQLite: 3 rounds of --repeat 3 per side
#   bench/compare.sh /tmp/before 3 pg         # PostgreSQL at 127.0.0.1:5432 (a new database per run;
#                                             # BATON_BENCH_PG_PORT for another server on 127.0.0.1)
#   bench/compare.sh /tmp/before 3 sqlite --remote   # through a baton server with remote workers
#
# Each round runs the before tree, then this one, with the same interpreter; the last lines are
# every run's tasks/s per side, sorted, and their median, and the statements per task where the
# database counts them (PostgreSQL with pg_stat_statements).
set -euo pipefail
before=$1 rounds=$2 dialect=${3:-sqlite}
extra=("${@:4}")  # e.g. --remote
pg_port=${BATON_BENCH_PG_PORT:-5432}
here=$(cd "$(dirname "$0")/.." && pwd)
py=$here/.venv/bin/python
args=(--partitions 1000 --workers 2 --slots 4 --repeat 3 "${extra[@]}")
work=$(mktemp -d)
log=$work/runs.log
for round in $(seq 1 "$rounds"); do
  for side in before after; do
    tree=$before; [ "$side" = after ] && tree=$here
    db=()
    if [ "$dialect" = pg ]; then
      name=bench_${side}_$round
      psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" postgres
      db=(--db "postgresql://postgres@127.0.0.1:$pg_port/$name")
    fi
    echo "== $side round $round" | tee -a "$log"
    (cd "$work" && PYTHONPATH=$tree "$py" -m baton bench "${args[@]}" "${db[@]}") | tee -a "$log"
    [ "$dialect" = pg ] && psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "DROP DATABASE $name" postgres
  done
done
"$py" - "$log" <<'PY'
import re, statistics, sys
runs = {"before": [], "after": []}
statements = {"before": [], "after": []}
side = "before"
for line in open(sys.argv[1]):
    if line.startswith("== "):
        side = line.split()[1]
    elif found := re.search(r"([\d,]+) tasks/s, dispatch", line):
        runs[side].append(int(found.group(1).replace(",", "")))
        if counted := re.search(r"([\d.]+) statements/task", line):
            statements[side].append(float(counted.group(1)))
for side, figures in runs.items():
    print(f"{side}: {sorted(figures)} median {statistics.median(figures):,.0f} tasks/s")
    if statements[side]:
        print(f"{side}: statements/task {sorted(statements[side])} median {statistics.median(statements[side])}")
PY
rm -rf "$work"
