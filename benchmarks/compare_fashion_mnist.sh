#!/usr/bin/env bash
# Real-data comparison for docs/benchmarks.md (b): darts, pc-darts, pc-only and en-only, 3 seeds each, on
# Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist), CPU budget, on the DARTS space and on
# NAS-Bench-201's. Each run's derived architecture is scored by proxy training and the zero-cost proxies;
# compare prints one column per score and the Kendall tau of supernet accuracy against each.
set -euo pipefail
out=${1:-out/fashion-mnist}
data=(--dataset fashion-mnist --data-root /usr/share/datasets/fashion-mnist --limit 1000 --epochs 3)
scores=(--evaluate proxy-train:epochs=8 --evaluate synflow --evaluate naswot --evaluate grad-norm --evaluate snip)
for space in darts nas-bench-201; do
  start=$SECONDS
  nasbench-pc compare darts pc-darts pc-only en-only --space "$space" --seeds 0 1 2 "${data[@]}" "${scores[@]}" \
    --save "$out/$space" --plot "$out/$space/plots" > "$out-$space.txt"
  echo "$space: $((SECONDS - start)) s" | tee -a "$out-times.txt"
  cat "$out/$space/compare.md"
done
# how the scores agree with each other, and the seconds each evaluator took per run
python3 "$(dirname "$0")/score_agreement.py" "$out/darts" "$out/nas-bench-201"
