#!/usr/bin/env bash
# GPU numbers for docs/benchmarks.md (c): run on a machine with an NVIDIA GPU.
set -euo pipefail
nvidia-smi --query-gpu=name,memory.total --format=csv
# memory / time per method at equal batch, and the largest batch within an 11 GB budget (1080Ti-sized)
nasbench-pc bench darts pc-darts pc-only en-only --device cuda --batch 32 64 128 256 --budget 11GB --json gpu-bench.json
# 20 full search steps with each method's paper settings (pc-darts batch 256, darts batch 64)
python benchmarks/gpu_search.py
