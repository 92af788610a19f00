#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the browser client's JSDoc types, the Rust
# tests, the freshness of the committed browser package, the crypto scenario suite compiled to
# wasm, and the JavaScript API tests.
# Installs what it needs when missing (see scripts/ensure-tools.sh); quick when already present.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "tools"
bindgen_version="$(sed -nE 's/^wasm-bindgen = "=([0-9.]+)".*/\1/p' crates/sotto-wasm/Cargo.toml)"
scripts/ensure-tools.sh wasm "$bindgen_version"
scripts/ensure-tools.sh nextest
# Debian's packages, installed only when missing: Node for the wasm tests, npm for the pinned
# TypeScript of the JSDoc check, Chromium and its WebDriver for the browser tests.
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "the server does not depend on the client cryptography"
if cargo tree --locked -p sotto-server -e normal --prefix none | grep -Eq '^(vodozemac|sotto-crypto) '; then
    echo "sotto-server depends on vodozemac or sotto-crypto: it must only relay opaque bytes" >&2
    exit 1
fi
echo "no vodozemac or sotto-crypto in sotto-server's dependency tree"

step "the browser client's JSDoc types (tsc --checkJs)"
scripts/check-web.sh

step "Rust tests"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --locked --doc --quiet

step "the committed browser package (web/pkg) is what the sources build"
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
scripts/build-wasm.sh "$fresh"
if ! diff -r "$root/web/pkg" "$fresh"; then
    echo "web/pkg is stale: run scripts/build-wasm.sh and commit web/pkg" >&2
    exit 1
fi

step "crypto scenario suites (OTR, encrypted rooms) and safety-number vectors on wasm32 (Node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --locked -p sotto-crypto --target wasm32-unknown-unknown \
    --test otr_scenarios --test safety_vectors --test rooms

step "JavaScript API of the browser package (Node)"
node --test crates/sotto-wasm/tests/node/
