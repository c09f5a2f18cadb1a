#!/usr/bin/env bash
# Builds out/bench-snap: a trimmed, compiled copy of HEAD that fits the device tool's 64 MiB carry
# next to .gpu/. It keeps the light models and the onnxruntime-node references of the previous
# snapshot (this machine writes them with --references-only; the device has no onnxruntime-node).
# Usage: bash bench/snapshot.sh   then carry [".gpu", "out/bench-snap"] and run from out/bench-snap.
set -euo pipefail
cd "$(dirname "$0")/.."
snap=out/bench-snap
next=out/bench-snap.next
rm -rf "$next" && mkdir -p "$next"
git archive HEAD | tar x -C "$next"
npx tsc -p "$next" >/dev/null
( cd "$next" && ln -s ../../node_modules node_modules && node dist/compiler/bundle/build-runtime.js >/dev/null && rm node_modules )
for keep in light refs; do [ -d "$snap/$keep" ] && cp -r "$snap/$keep" "$next/$keep"; done
( cd "$next" && rm -rf compiler examples bench/results docs fuzz test package-lock.json vitest* dist/examples \
    && find dist -name '*.d.ts' -delete && find dist -name '*.map' -delete )
git rev-parse --short HEAD > "$next/COMMIT"
rm -rf "$snap" && mv "$next" "$snap"
du -sh "$snap"
