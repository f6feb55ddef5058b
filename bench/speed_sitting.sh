#!/usr/bin/env bash
# One sitting: before (16abeb5, PYTHONPATH=$OLD) and after (main), interleaved.
# Run it from a scratch folder (each bench writes .baton/ there); PostgreSQL at 127.0.0.1:5432, user postgres,
# trust auth (a new database per run, left for the caller to drop). Prints nothing: one JSON line per run in $OUT.
set -u
OUT=${OUT:-speed_sitting.jsonl}
NEW=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: bench/speed_sitting.sh OLD_TREE (a worktree of the commit to compare with)}
run() {  # label tree args...
  local label=$1 tree=$2; shift 2
  local line
  line=$(PYTHONPATH=$tree timeout 300 $NEW/.venv/bin/python -m baton bench --json "$@" 2>/dev/null | tail -1)
  echo "{\"label\": \"$label\", \"args\": \"$*\", \"run\": ${line:-null}}" >> "$OUT"
}
pgdb() { local n="sit_$(date +%s%N)"; createdb -h 127.0.0.1 -U postgres "$n"; echo "postgresql://postgres@127.0.0.1:5432/$n"; }
for i in 1 2 3; do
  run sqlite-direct-new $NEW --partitions 1000
  run sqlite-remote-new $NEW --partitions 1000 --remote
  run sqlite-remote-hold0-new $NEW --partitions 1000 --remote --hold 0
  run sqlite-remote-old $OLD --partitions 1000 --remote
  run pg-direct-new $NEW --partitions 1000 --db "$(pgdb)"
  run pg-direct-old $OLD --partitions 1000 --db "$(pgdb)"
  run pg-remote-new $NEW --partitions 1000 --remote --db "$(pgdb)"
  run pg-remote-hold0-new $NEW --partitions 1000 --remote --hold 0 --db "$(pgdb)"
  run pg-remote-old $OLD --partitions 1000 --remote --db "$(pgdb)"
done
for i in 1 2 3; do
  run sleep-sqlite-direct-new $NEW --partitions 1000 --variant sleep
  run sleep-sqlite-remote-new $NEW --partitions 1000 --variant sleep --remote
  run sleep-pg-direct-new $NEW --partitions 1000 --variant sleep --db "$(pgdb)"
  run sleep-pg-remote-new $NEW --partitions 1000 --variant sleep --remote --db "$(pgdb)"
  run sleep-sqlite-remote-rtt5-new $NEW --partitions 1000 --variant sleep --remote --rtt-ms 5
  run sleep-pg-remote-rtt5-new $NEW --partitions 1000 --variant sleep --remote --rtt-ms 5 --db "$(pgdb)"
done
