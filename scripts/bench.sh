#!/usr/bin/env bash
# The benchmarks (figures in BENCHMARKS.md). Not part of scripts/test.sh: they need a release build
# of the workspace (5-7 min cold here), and timing belongs in benchmarks, not in tests.
#   scripts/bench.sh                 # the retention planner, the failover's own share, init + memory
#   RUNS=5 BENCH_ONLY=init scripts/bench.sh
#   BENCH_ONLY=data scripts/bench.sh    # what the data checks add (real PostgreSQL and MariaDB)
#   BENCH_ONLY=fleet FLEET_SIZES=10,100,1000 scripts/bench.sh   # every scheduled run at fleet size
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -z "${BENCH_ONLY:-}" ] || [ "$BENCH_ONLY" = retention ]; then
  cargo bench --locked -p lifeboat-core --bench retention
fi
if [ "${BENCH_ONLY:-}" != fleet ] && [ "${BENCH_ONLY:-}" != retention ]; then
  LIFEBOAT_WATCH_RELEASE=1 cargo bench --locked -p lifeboat-tests --bench recovery
fi
if [ -z "${BENCH_ONLY:-}" ] || [ "$BENCH_ONLY" = fleet ]; then
  cargo bench --locked -p lifeboat-tests --bench fleet
fi
