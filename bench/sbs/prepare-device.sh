#!/usr/bin/env bash
# Prepares the side-by-side benchmark for a GPU machine that has no network, no ../shared and no
# onnxruntime-node (the H100 device machine): writes out/bench-snap/ (git-ignored), holding
#   - the committed tree at HEAD (git archive: the run does not see edits in progress), built to dist/
#   - light/: the ONNX light CNNs (small; their weights are randomized on the device, deterministically)
#   - refs/:  onnxruntime-node CPU reference outputs for the machine's model set (same models and inputs,
#             checked by sha256 on the device), written here because the device cannot run onnxruntime-node
#   - COMMIT
# Usage (repository root, after npm ci):  bash bench/sbs/prepare-device.sh [machine, default h100]
# Then pack node_modules with ../shared/gpu/pack.sh and run on the device, carrying ".gpu" and
# "out/bench-snap":
#   source .gpu/setup.sh && cd out/bench-snap && BENCH_COMMIT=$(cat COMMIT) node dist/bench/side-by-side.js \
#     --machine h100 --light-dir light --refs refs --work /tmp/fmb --results $OUT
set -euo pipefail
machine=${1:-h100}
root=$(git rev-parse --show-toplevel)
cd "$root"
snap=out/bench-snap
rm -rf "$snap"
mkdir -p "$snap"
git archive HEAD | tar -x -C "$snap"
git rev-parse --short HEAD > "$snap/COMMIT"
# dist/ from the snapshot's sources; types and packages resolve from the repository's node_modules
node_modules/.bin/tsc -p "$snap/tsconfig.json"
mkdir -p "$snap/light"
cp "${FLASHMEM_CONFORMANCE_DIR:-../shared/conformance/onnx}"/light/light_*.onnx "$snap/light/"
work=$(mktemp -d /tmp/flashmemc-bench-refs-XXXX)
node "$snap/dist/bench/side-by-side.js" --machine "$machine" --references-only --light-dir "$snap/light" --refs "$snap/refs" --work "$work"
rm -rf "$work"
du -sh "$snap" "$snap/refs"
