#!/usr/bin/env bash
# GPU numbers for docs/benchmarks.md (c): run on a machine with an NVIDIA GPU, from the repository root.
#
# The reference rows need the reference code on that machine: REFERENCE_PC (a PC-DARTS checkout, holding
# model_search.py, operations.py, genotypes.py) and REFERENCE_DARTS (darts/cnn of a DARTS checkout). Without
# them those rows are left out. Every table names the GPU it ran on.
set -euo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
refs=()
[ -n "${REFERENCE_PC:-}" ] && refs+=(--reference-pc "$REFERENCE_PC")
[ -n "${REFERENCE_DARTS:-}" ] && refs+=(--reference-darts "$REFERENCE_DARTS")
# ours against the reference on this GPU: first-order search step at each paper's batch (pc-darts 256, darts 64),
# peak allocated memory, largest batch in 11 GB, and the 50-epoch CIFAR-10 search projected to GPU-hours
python benchmarks/gpu_reference.py "${refs[@]}" --markdown
# memory / time per method at equal batch, with and without recomputed cells, and the largest batch within 11 GB
nasbench-pc bench darts pc-darts pc-only en-only --device cuda --batch 32 64 128 256 --budget 11GB --json gpu-bench.json
nasbench-pc bench darts pc-darts --device cuda --checkpoint cells --batch 64 256 --budget 11GB --json gpu-bench-ckpt.json
# 20 full search steps of our own search loop with each method's paper settings (second order for darts)
python benchmarks/gpu_search.py
