#!/usr/bin/env bash
# The cargo fuzz targets in shared/fuzz (event classifiers, config parser, approval link parser,
# Function URL request reading), each for a fixed time, seeded from events/ and examples/.
# Prints per target: executions, seconds, corpus size and crashes found (a crash fails the run
# and leaves its input in shared/fuzz/artifacts/<target>/). Needs a nightly toolchain (libFuzzer's
# sanitizer flags); installs cargo-fuzz when missing.
# Usage: scripts/fuzz.sh [seconds per target, default 60] [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=${*:-event config approval_link function_url}
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
corpus=target/fuzz-corpus
for t in $targets; do mkdir -p "$corpus/$t"; done
cp events/*.json "$corpus/event/" 2>/dev/null || true
cp events/approval-url-get.json "$corpus/function_url/" 2>/dev/null || true
cp examples/lifeboat.yaml "$corpus/config/" 2>/dev/null || true
[ -d "$corpus/approval_link" ] && python3 -c "import json;print(json.load(open('events/approval-url-get.json'))['rawQueryString'],end='')" >"$corpus/approval_link/sample"
status=0
printf '| Target | Seconds | Executions | Corpus | Crashes |\n|---|---|---|---|---|\n'
for t in $targets; do
  log=target/fuzz-$t.log
  if (cd shared/fuzz && cargo +nightly fuzz run "$t" "../../$corpus/$t" -- \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048) >"$log" 2>&1; then
    crashes=0
  else
    crashes=1
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  files=$(find "$corpus/$t" -type f | wc -l)
  printf '| %s | %s | %s | %s | %s |\n' "$t" "$seconds" "${execs:-?}" "$files" "$crashes"
  [ "$crashes" = 0 ] || tail -40 "$log" >&2
done
exit $status
