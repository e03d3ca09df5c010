#!/usr/bin/env bash
# One command for a lent GPU: is every CUDA path right, and how do we measure against the reference there?
#
#   bash benchmarks/gpu.sh                          # on a GPU machine, from the repository root: gpu-report.md
#   bash benchmarks/gpu.sh --device cpu             # the dry run CI makes: every step at tiny sizes on CPU
#   bash benchmarks/gpu.sh --out report.md --seconds 480
#
# In this order, each step given what is left of --seconds (default 450; the report says where time ran out):
#   1. the `cuda` tests (tests/test_device_paths.py, the device's parametrisation), pass/fail summary first;
#   2. ours against the reference model_search.py files on the same device (benchmarks/gpu_reference.py): step
#      time, peak allocated memory, largest batch within 11 GB, the 50-epoch CIFAR-10 search in GPU-hours;
#   3. `nasbench-pc bench` on the device, with and without --checkpoint cells;
#   4. the faster paths that are off by default until measured (benchmarks/gpu_options.py: plain path, stacked
#      channels-last, torch.compile, CUDA graphs);
#   5. 20 steps of our own search loop with the paper presets (benchmarks/gpu_search.py), if time is left;
#   6. the DARTS family's search step and peak memory per method on both spaces (supernet_cost.py --search-step).
# The CPU dry run runs only the quickest device tests (CI's pytest runs them all on CPU just before) and one method
# in step 4 (torch.compile's tracing is most of its time on CPU).
# The steps' logs go to stderr.
# The report is markdown, the machine first (GPU, driver, torch, CUDA, cuDNN): ready for docs/benchmarks.md (c).
#
# Reference rows need the reference code on the machine: REFERENCE_PC (a PC-DARTS checkout's folder holding
# model_search.py, operations.py, genotypes.py) and REFERENCE_DARTS (darts/cnn of a DARTS checkout); default
# .reference/pc-darts and .reference/darts where those exist (benchmarks/reference_files.sh fills them from a
# checkout). Without them the reference rows are left out, and the report says so.
set -uo pipefail
cd "$(dirname "$0")/.."

device=cuda
out=gpu-report.md
seconds=450
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "usage: bash benchmarks/gpu.sh [--device cuda|cpu] [--out FILE] [--seconds N]" >&2; exit 2 ;;
  esac
done
case "$device" in cuda|cpu) ;; *) echo "--device takes cuda or cpu, got '$device'" >&2; exit 2 ;; esac
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="benchmarks${PYTHONPATH:+:$PYTHONPATH}"
deadline=$(( $(date +%s) + seconds ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# a machine with torch but without nasbench-pc (a lent GPU's image): install it from this tree, offline
if ! "$python" -c "import importlib.metadata as m; m.version('nasbench-pc')" 2>/dev/null; then
  "$python" -m pip install -q --no-deps --no-build-isolation -e . || exit 1
fi
if [ "$device" = cuda ] && ! "$python" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "No CUDA GPU is visible to this PyTorch; run on a GPU machine, or try the script with --device cpu." >&2
  exit 2
fi

if [ "$device" = cuda ]; then
  reference_batch=(); tiny=(); bench_batches=(32 64 128 256); ckpt_batches=(64 256); budget=11GB
  options=(); search=(); family=(--batch 64 --repeats 3); deselect=()
else  # the dry run: every step, at sizes a 2-core CPU runs in a minute or two
  reference_batch=(--batch 4 --steps 3 --warmup 1); tiny=(-C 4 --layers 3 --image-size 16)
  bench_batches=(4 8); ckpt_batches=(4); budget=200MB
  options=(--methods pc-darts --batch 4 --init-channels 4 --layers 3 --steps 3 --warmup 1 --compile-backend eager)
  search=(--device cpu --tiny --steps 2 --warmup 1)
  family=(--tiny --batch 4 --repeats 1)
  # the report's plumbing on the quickest device tests (the NAS-Bench-201 cases): CI's pytest has just run the
  # whole file on CPU
  deselect=(-k "nas-bench-201")
fi
refs=()
REFERENCE_PC=${REFERENCE_PC:-$([ -f .reference/pc-darts/model_search.py ] && echo .reference/pc-darts)}
REFERENCE_DARTS=${REFERENCE_DARTS:-$([ -f .reference/darts/model_search.py ] && echo .reference/darts)}
[ -n "$REFERENCE_PC" ] && refs+=(--reference-pc "$REFERENCE_PC")
[ -n "$REFERENCE_DARTS" ] && refs+=(--reference-darts "$REFERENCE_DARTS")

left() { echo $(( deadline - $(date +%s) )); }
failed=0  # the exit status: 1 when a test or a step failed or ran out of time (the report is written all the same)

# step TITLE COMMAND...: run with what is left of the time, its stdout into the report, its log beside
step() {
  local title="$1"; shift
  local budget_s; budget_s=$(left)
  printf '\n## %s\n\n' "$title" >> "$out"
  if [ "$budget_s" -le 5 ]; then
    echo "Not run: the time (--seconds $seconds) ran out before this step." >> "$out"
    failed=1
    return 0
  fi
  echo "== $title ($budget_s s left)" >&2
  timeout --signal=TERM --kill-after=15 "$budget_s" "$@" >> "$out" 2> "$work/log"
  local rc=$?
  [ $rc -ne 0 ] && failed=1
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    printf '\n(stopped at the time limit: what is above finished)\n' >> "$out"
  elif [ $rc -ne 0 ]; then
    printf '\nThis step failed (exit %s); the end of its log:\n\n```\n%s\n```\n' "$rc" "$(tail -n 15 "$work/log")" >> "$out"
  fi
  cat "$work/log" >&2
  return 0
}

{
  echo "# benchmarks/gpu.sh --device $device ($(date -u +%Y-%m-%d))"
  echo
  "$python" benchmarks/gpu_report.py machine --device "$device"
} > "$out"

# 1. the CUDA tests first: a broken path is known even if the measurements run out of time
printf '\n## CUDA tests (`pytest -m cuda`, the %s parametrisation)\n\n' "$device" >> "$out"
echo "== CUDA tests" >&2
NASBENCH_PC_TEST_DEVICES=$device timeout --kill-after=15 $(( $(left) * 2 / 5 )) "$python" -m pytest -m cuda -q -rs \
  -p no:cacheprovider --junitxml "$work/tests.xml" "${deselect[@]}" tests/test_device_paths.py >&2
tests_rc=$?
[ $tests_rc -ne 0 ] && failed=1
"$python" benchmarks/gpu_report.py tests "$work/tests.xml" >> "$out"
[ $tests_rc -eq 124 ] && printf '\n(the tests were stopped at their share of the time)\n' >> "$out"

# 2. ours against the reference on this device
[ ${#refs[@]} -eq 0 ] && note=" (no reference checkout here: our rows only)" || note=""
step "Ours against the reference model_search.py$note" \
  "$python" benchmarks/gpu_reference.py --device "$device" "${reference_batch[@]}" "${refs[@]}" --markdown

# 3. nasbench-pc bench on the device, with and without recomputed cells
bench_json=("$work/bench.json" "$work/bench-ckpt.json")
step "nasbench-pc bench on $device" bash -c '
  "$0" -m nasbench_pc bench darts pc-darts pc-only en-only --device "$1" --batch $2 --budget "$3" ${4:+$4} \
    --json "$5" > /dev/null &&
  "$0" -m nasbench_pc bench darts pc-darts --device "$1" --checkpoint cells --batch $6 --budget "$3" ${4:+$4} \
    --json "$7" > /dev/null &&
  "$0" benchmarks/gpu_report.py bench "$5" "$7"' \
  "$python" "$device" "${bench_batches[*]}" "$budget" "${tiny[*]}" "${bench_json[0]}" "${ckpt_batches[*]}" \
  "${bench_json[1]}"

# 4. the faster paths that are off by default, A/B
step "Faster paths, off by default until measured" "$python" benchmarks/gpu_options.py --device "$device" "${options[@]}"

# 5. our own search loop with the paper presets
step "Our search loop, paper presets" "$python" benchmarks/gpu_search.py "${search[@]}"

# 6. the DARTS family's search step and peak memory per method, both spaces (issue 22)
step "The DARTS family: one search step per method" bash -c '
  "$0" benchmarks/supernet_cost.py --search-step --device "$1" --space nas-bench-201 ${2} --markdown \
    --methods darts-1st gdas drnas sdarts-rs sdarts-adv fairdarts beta-darts darts-minus &&
  "$0" benchmarks/supernet_cost.py --search-step --device "$1" --space darts ${2} --markdown \
    --methods darts-1st gdas sdarts-rs sdarts-adv fairdarts beta-darts darts-minus' \
  "$python" "$device" "${family[*]}"

echo "wrote $out ($(( seconds - $(left) )) s)$([ $failed -eq 1 ] && echo '; something failed or ran out of time: see the report')" >&2
exit $failed
