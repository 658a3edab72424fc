#!/usr/bin/env bash
# The long chaos run: both chaos tests over more seeds than the test command runs (default 1-10),
# printing per seed the calls made, the faults injected (by kind) and what each run needed.
# tests/tests/chaos.rs: copier sweep, pruner, notifier, in-process. tests/tests/chaos_recovery.rs:
# a failover and a drill through the real binaries and moto's Step Functions interpreter.
# Usage: [LIFEBOAT_CHAOS_RATE=0.6] scripts/chaos.sh [comma-separated seeds]   (rate default 0.2)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
seeds=${1:-1,2,3,4,5,6,7,8,9,10}
for t in chaos chaos_recovery; do
  LIFEBOAT_CHAOS_SEEDS=$seeds cargo test --locked -p lifeboat-tests --test e2e "$t::" -- --nocapture 2>&1 |
    grep -E "CHAOS|test result|panicked"
done
