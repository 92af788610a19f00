#!/usr/bin/env bash
# Builds the browser package of crates/sotto-wasm into web/pkg (or the directory given as $1).
#
# Reproducible: the toolchain is pinned (rust-toolchain.toml), the wasm-bindgen CLI is pinned to
# the crate's exact version, and source paths are remapped so the output does not depend on
# where the checkout lives. scripts/test.sh rebuilds into a temporary directory and fails if
# the committed web/pkg differs.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out_dir="${1:-$root/web/pkg}"
cd "$root"

bindgen_version="$(sed -nE 's/^wasm-bindgen = "=([0-9.]+)".*/\1/p' crates/sotto-wasm/Cargo.toml)"
"$root/scripts/ensure-tools.sh" wasm "$bindgen_version"

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
export CARGO_TARGET_DIR="$root/target/wasm"
export RUSTFLAGS="--remap-path-prefix=$root=/sotto --remap-path-prefix=$cargo_home=/cargo"
cargo build --quiet -p sotto-wasm --target wasm32-unknown-unknown --profile wasm-release

mkdir -p "$out_dir"
wasm-bindgen \
    --target web \
    --out-dir "$out_dir" \
    --out-name sotto \
    --remove-name-section \
    --remove-producers-section \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/sotto_wasm.wasm"
# wasm-bindgen writes a package.json only for bundler targets; nothing else to clean.
