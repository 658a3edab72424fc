#!/usr/bin/env bash
# The long chaos run: the chaos test over more seeds than the test command runs (default 10),
# printing per seed the calls made, the faults injected and the invocations each function needed.
# Usage: [LIFEBOAT_CHAOS_RATE=0.6] scripts/chaos.sh [comma-separated seeds]   (rate default 0.2)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
seeds=${1:-1,2,3,4,5,6,7,8,9,10}
LIFEBOAT_CHAOS_SEEDS=$seeds cargo test --locked -p lifeboat-tests --test chaos -- --nocapture 2>&1 | grep -E "CHAOS|test result|panicked"
