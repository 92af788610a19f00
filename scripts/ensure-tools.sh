#!/usr/bin/env bash
# Installs what the build and the tests need when it is missing, and does nothing when present.
#   ensure-tools.sh wasm VERSION   the wasm32 target and the wasm-bindgen CLI of VERSION
#   ensure-tools.sh nextest        cargo-nextest
set -euo pipefail

case "${1:-}" in
wasm)
    version="${2:?wasm-bindgen version}"
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown
    fi
    if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | cut -d' ' -f2)" != "$version" ]; then
        echo "installing wasm-bindgen-cli $version (once)" >&2
        cargo install --quiet wasm-bindgen-cli --version "$version"
    fi
    ;;
nextest)
    if ! cargo nextest --version >/dev/null 2>&1; then
        cargo install --quiet cargo-nextest
    fi
    ;;
*)
    echo "usage: ensure-tools.sh wasm VERSION | nextest" >&2
    exit 2
    ;;
esac
