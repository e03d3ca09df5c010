#!/usr/bin/env bash
# The DARTS family compared on real data for docs/benchmarks.md (issue 22): darts-1st, pc-darts and the seven
# family methods, 3 seeds each, on Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist), CPU budget.
#   nas-bench-201 (quick shape: C=8, one cell per stage, 16x16): LIMIT_201 images (half for the weights, half for
#     the architecture), EPOCHS_201 epochs.
#   darts (quick shape: C=8, 5 cells; drnas its own C=36, 20-cell progressive supernet): LIMIT_DARTS images,
#     EPOCHS_DARTS epochs.
# The budget is the environment's (defaults: 4000 images x 25 epochs, 1000 x 3). docs/benchmarks.md says why 25
# epochs of 4,000 images do not reach DARTS' collapse (the architecture parameters stay almost uniform): the
# collapse budget (the NAS-Bench-201 paper's ~19,500 architecture steps) is a GPU job, e.g.
#   EPOCHS_201=50 LIMIT_201=50000 bash benchmarks/family_fashion_mnist.sh /tmp/family nas-bench-201
# DARTS- decays its auxiliary skip over the search's own length (the reference: 50 of 50 epochs), hence
# decay_epochs = the budget; beta-DARTS keeps the reference's hard-coded 0.5 per epoch (lam_epochs=100).
# The searches run as two single-threaded workers (--devices cpu,cpu, one per core; DEVICES=cuda:0,cuda:0,... on
# a GPU); each derived architecture
# is then scored by proxy-train (8 epochs from scratch on the same training images, tested on 1,000 test images).
# sdarts-adv (4-4.5x darts-1st's step) is named first so that its runs start first and do not trail; the ratios
# divide by darts-1st (--baseline).
# Usage: bash benchmarks/family_fashion_mnist.sh OUT [SPACE ...]   (default: nas-bench-201 darts)
set -euo pipefail
out=${1:-out/family}
shift || true
[ $# -gt 0 ] && spaces=("$@") || spaces=(nas-bench-201 darts)
methods=(sdarts-adv darts-1st pc-darts gdas drnas sdarts-rs fairdarts beta-darts darts-minus)
data=(--dataset fashion-mnist --data-root /usr/share/datasets/fashion-mnist --seeds 0 1 2)
mkdir -p "$out"
run_space() {  # space, epochs, limit
  local space=$1 epochs=$2 limit=$3 start=$SECONDS
  local args=("${methods[@]}" --space "$space" "${data[@]}" --limit "$limit" --epochs "$epochs"
              --method-option "decay_epochs=$epochs" --baseline darts-1st --save "$out/$space")
  OMP_NUM_THREADS=1 nasbench-pc compare "${args[@]}" --devices "${DEVICES:-cpu,cpu}" --format markdown > "$out/$space-search.md"
  echo "$space searches: $((SECONDS - start)) s" | tee -a "$out/times.txt"
  start=$SECONDS
  nasbench-pc compare "${args[@]}" --evaluate proxy-train:epochs=8 --plot "$out/$space/plots" > "$out/$space.txt"
  echo "$space proxy-train: $((SECONDS - start)) s" | tee -a "$out/times.txt"
  cat "$out/$space/compare.md"
}
for space in "${spaces[@]}"; do
  case $space in
    nas-bench-201) run_space nas-bench-201 "${EPOCHS_201:-25}" "${LIMIT_201:-4000}" ;;
    darts) run_space darts "${EPOCHS_DARTS:-3}" "${LIMIT_DARTS:-1000}" ;;
    *) echo "unknown space $space (nas-bench-201 or darts)" >&2; exit 2 ;;
  esac
  # the skip count of each run's derived cell after every epoch, from its metrics.jsonl
  python3 "$(dirname "$0")/skip_trajectory.py" "$out/$space"
done
