#!/usr/bin/env bash
# Builds onednn_layers.cc against a prefix holding oneDNN's headers and
# lib/libdnnl.so.3 (pip's onednn-devel-cpu-gomp), and copies the lib beside the
# binary, which looks there first (RPATH $ORIGIN): the folder can be shipped.
#   benchmarks/native/build.sh OUT [PREFIX]   PREFIX: $ONEDNN_PREFIX, else the repo's .venv
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT [PREFIX]}
prefix=${2:-${ONEDNN_PREFIX:-$here/../../.venv}}
mkdir -p "$(dirname "$out")"
g++ -O2 -std=c++17 -fopenmp -I"$prefix/include" "$here/onednn_layers.cc" -o "$out" \
  -L"$prefix/lib" -l:libdnnl.so.3 -Wl,-rpath,'$ORIGIN'
cp "$prefix/lib/libdnnl.so.3" "$(dirname "$out")/"
