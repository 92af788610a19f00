#!/usr/bin/env bash
# Type-checks the browser client's JSDoc types with TypeScript (`tsc --noEmit --checkJs`, settings
# in tools/typecheck/tsconfig.json) over web/*.js and web/views/*.js; web/pkg/sotto.d.ts types the
# wasm API they call. TypeScript is pinned in tools/typecheck/package-lock.json and installed with
# `npm ci` only when missing, so a second run needs no network. Running the client needs none of it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/tools/typecheck"
pinned="$(sed -nE 's/^ *"typescript": "([0-9.]+)".*/\1/p' "$tools/package.json")"

installed="$(node -p 'require(process.argv[1]).version' "$tools/node_modules/typescript/package.json" 2>/dev/null || true)"
if [ "$installed" != "$pinned" ]; then
    echo "installing TypeScript $pinned into tools/typecheck/node_modules (npm ci)"
    (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
fi

"$tools/node_modules/.bin/tsc" -p "$tools/tsconfig.json"
echo "web/: JSDoc types check (TypeScript $pinned)"
