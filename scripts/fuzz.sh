#!/usr/bin/env bash
# Run every cargo-fuzz target for N seconds (default 60), starting from the checked-in seeds.
# Installs cargo-fuzz from crates.io if missing; needs the nightly toolchain (rustup).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
targets=$(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^herald-fuzz$')
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  seeds="fuzz/seeds/$t"; [ -d "$seeds" ] || seeds=""
  echo "--- $t ($SECS s)"
  log="fuzz/corpus/$t.log"
  if cargo +nightly fuzz run "$t" "fuzz/corpus/$t" $seeds -- -max_total_time="$SECS" -rss_limit_mb=2048 >"$log" 2>&1; then
    grep -E '^(#[0-9]+ *DONE|Done [0-9]+ runs)' "$log" | tail -1
  else
    tail -40 "$log"; echo "fuzz target $t FAILED"; exit 1
  fi
done
