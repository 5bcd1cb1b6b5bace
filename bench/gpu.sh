#!/bin/sh
# CPU against GPU through the built daemon (bench/gpu.mjs says what it measures). Needs only a
# Node binary ($NODE, else `node`) and an installed, built tree: no npm, no network.
#   NODE=/path/to/node bench/gpu.sh [--backend auto|cuda|vulkan] [--size-mb 1024] [--tokens 128] [--runs 5] [MODEL.gguf]
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
if [ ! -f "$here/../apps/daemon/dist/cli.js" ]; then
  echo "bench/gpu.sh: apps/daemon/dist is missing; build the tree first (npm run build)" >&2
  exit 2
fi
exec "${NODE:-node}" "$here/gpu.mjs" "$@"
