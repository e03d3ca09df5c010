#!/usr/bin/env bash
# Real-data comparison for docs/benchmarks.md (b): darts, pc-darts, pc-only and en-only,
# 3 seeds each, on Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist), CPU budget.
set -euo pipefail
out=${1:-out/fashion-mnist}
nasbench-pc compare darts pc-darts pc-only en-only --seeds 0 1 2 --dataset fashion-mnist \
  --data-root /usr/share/datasets/fashion-mnist --limit 1000 --epochs 3 --save "$out" --plot "$out/plots"
cat "$out/compare.md"
