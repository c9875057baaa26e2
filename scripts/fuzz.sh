#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 10) with cargo-fuzz (libFuzzer,
# AddressSanitizer) on the nightly toolchain, starting from the committed seeds in
# fuzz/seeds/TARGET. A crash fails the run and leaves its input in fuzz/artifacts/TARGET.
# Without a nightly toolchain it says so and exits 0: then run the targets by hand.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-10}
log() { printf 'fuzz: %s\n' "$*" >&2; }

if ! cargo +nightly --version >/dev/null 2>&1; then
    log "no nightly toolchain here: fuzzing skipped (README, Security and reliability, says how to run it)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
# The fuzz build has its own flags; its own target directory keeps the main one's cache.
export CARGO_TARGET_DIR="${SWITCHBOARD_FUZZ_TARGET_DIR:-$HOME/.cache/switchboard-fuzz-target}"
log "building the fuzz targets"
cargo +nightly fuzz build -O

status=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$work/$target" "seeds/$target"
    log "$target: ${seconds}s"
    # The first directory collects new inputs (thrown away); the seeds are only read.
    if ! cargo +nightly fuzz run -O "$target" "$work/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1 \
        2>"$work/$target.log"; then
        log "$target FAILED; its input is in fuzz/artifacts/$target:"
        tail -40 "$work/$target.log" >&2
        status=1
    else
        grep -E '^stat::number_of_executed_units' "$work/$target.log" | sed "s/^/fuzz: $target: /" >&2 || true
    fi
done
exit "$status"
