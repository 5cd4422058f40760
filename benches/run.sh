#!/usr/bin/env bash
# Runs the benchmark (benches/rest.rs): flapi vs the C++ flAPI vs a bare
# DuckDB loop on ../shared/data/customers.parquet. Not part of CI.
# Usage: benches/run.sh [SECONDS_PER_RUN]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
shared="$(cd .. && pwd)/shared"
ln -sfn "$shared/data" benches/project/data
peer="$(bash "$shared/peer/setup-flapi-peer.sh" | tail -n 1)"
[ -f .ci/env.sh ] && . .ci/env.sh
cargo bench --bench rest -- --peer "$peer" --seconds "${1:-10}"
