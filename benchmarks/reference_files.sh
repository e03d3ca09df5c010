#!/usr/bin/env bash
# Copy the reference model files that benchmarks/gpu.sh and the other benchmark scripts compare against into
# .reference/ (ignored by git, so never committed): model_search.py, operations.py and genotypes.py of
# yuhuixu1993/PC-DARTS (its root) into .reference/pc-darts, and of quark0/darts (cnn/) into .reference/darts.
#
#   bash benchmarks/reference_files.sh ~/src/PC-DARTS ~/src/darts           # two checkouts
#   bash benchmarks/reference_files.sh /mirror/PC-DARTS/.git /mirror/darts/.git   # two bare git directories
#
# Then carry .reference to the GPU machine with the working tree; gpu.sh finds it there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bash benchmarks/reference_files.sh PC_DARTS_CHECKOUT DARTS_CHECKOUT" >&2; exit 2; }

copy() {  # copy SOURCE SUBFOLDER TARGET
  local source="$1" sub="$2" target=".reference/$3"
  mkdir -p "$target"
  for name in model_search.py operations.py genotypes.py; do
    if [ -f "$source/$sub$name" ]; then
      cp "$source/$sub$name" "$target/$name"
    elif git --git-dir="$source" rev-parse HEAD >/dev/null 2>&1; then
      git --git-dir="$source" show "HEAD:$sub$name" > "$target/$name"
    else
      echo "$source holds no $sub$name (nor is it a git directory); pass the checkout's root folder." >&2
      exit 2
    fi
  done
  echo "$target: $(ls "$target" | tr '\n' ' ')"
}
copy "$1" "" pc-darts
copy "$2" "cnn/" darts
