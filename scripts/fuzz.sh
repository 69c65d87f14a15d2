#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), seeded from fuzz/seeds/
# and the repository's seeds/ and pipeline.toml. Installs cargo-fuzz when it is missing.
#
# Works on a stable toolchain: without a sanitizer (`-s none`, the default here) cargo-fuzz
# passes rustc only stable flags (coverage instrumentation via `-Cpasses=sancov-module`). Set
# FUZZ_SANITIZER=address on a nightly toolchain for AddressSanitizer. A crash, a panic or an
# input over the per-input time budget (1 s; DROPLINE_FUZZ_BUDGET_MS overrides it) fails the
# script; libFuzzer leaves the input in fuzz/artifacts/TARGET/ and the log in
# fuzz/logs/TARGET.log. The corpora grow in fuzz/corpus/ (none of the three is committed).
#
#   scripts/fuzz.sh [SECONDS] [TARGET]...
set -euo pipefail
secs=${1:-60}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
sanitizer=${FUZZ_SANITIZER:-none}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# Longest input generated: large enough for the quadratic shapes of markup (many attributes,
# deep nesting) to show within the time budget.
max_len() {
  case "$1" in
    strip_html | read_decode) echo 262144 ;;
    strip_text) echo 65536 ;;
    *) echo 16384 ;;
  esac
}

mkdir -p logs
for t in "${targets[@]}"; do
  cargo fuzz build -s "$sanitizer" "$t"
done
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  cp seeds/"$t"/* "corpus/$t/"
  case "$t" in
    strip_text | read_decode) cp ../seeds/* "corpus/$t/" ;;
    config_parse) cp ../pipeline.toml "corpus/$t/pipeline.toml" ;;
  esac
  # -timeout: an input that never returns is a crash after 10 s (the 1 s budget is the
  # target's own check, which needs the input to return).
  status=0
  cargo fuzz run -s "$sanitizer" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len="$(max_len "$t")" \
    -print_final_stats=1 >"logs/$t.log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
  slowest=$(grep '^slowest input:' "logs/$t.log" | tail -n 1 | sed 's/^slowest input: //')
  echo "$t: ${secs}s, $execs execs, peak RSS ${rss} MB, slowest: ${slowest:-none}, exit $status"
  if [ "$status" -ne 0 ]; then
    grep -E 'panicked|SUMMARY|Test unit written|ERROR' "logs/$t.log" | head -n 20 >&2
    echo "fuzz target $t failed: see fuzz/logs/$t.log and fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
