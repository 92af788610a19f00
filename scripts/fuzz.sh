#!/usr/bin/env bash
# Fuzzes every decoder of sotto-crypto for SECONDS each (default 300) with cargo-fuzz on nightly,
# then minimises the corpora, which tests/fuzz_corpus.rs replays on stable.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/crates/sotto-crypto"
seconds="${1:-300}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(otr_packet otr_inner key_backup keys_and_trust otr_session room_envelope room_share agreement_key)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz

for target in "${targets[@]}"; do
    echo "==> fuzzing $target for ${seconds}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1
    cargo +nightly fuzz cmin "$target"
done
