#!/usr/bin/env bash
# Every GPU measurement the README waits for, as one command for a lent GPU machine (H100 / H200):
#
#   bash benchmarks/gpu_session.sh --fetch   # here, once: the wheels the GPU machine lacks, into .whl/
#   bash benchmarks/gpu_session.sh           # there (device `run`, carry [".whl"], timeout_s 600)
#   SMOKE=1 bash benchmarks/gpu_session.sh   # anywhere: tiny sizes on the CPU, checks the script
#
# 1. benchmarks/gpu_step.py: the MCJA step vs timm ResNet-50, augmentation ms and kernels, recipe img/s.
# 2. benchmarks/ablation.py at the full schedule with what time is left (ABLATION_S seconds, default 300),
#    4 runs at once; finished runs come back as ablation-runs.tgz (unpack into
#    benchmarks/results/ablation-runs/ to add them to a GPU table; a CPU table refuses them).
# Results land in $OUT (the device tool's output folder), else in benchmarks/results/gpu-session/.
set -u -o pipefail
cd "$(dirname "$0")/.."
WHEELS="datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19"  # the GPU image has torch, timm, accelerate, ...

if [ "${1:-}" = "--fetch" ]; then
  grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
  # shellcheck disable=SC2086
  exec python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl $WHEELS
fi

OUT=${OUT:-benchmarks/results/gpu-session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ -n "${SMOKE:-}" ]; then
  PY=${PYTHON:-python3}; STEP_ARGS=--smoke; ABLATION=(--seeds 1 --jobs 1 optim.epochs=1 "optim.milestones=[1]" eval.trials=1)
else
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "no wheels in .whl/: run 'bash benchmarks/gpu_session.sh --fetch' first and carry .whl" >&2; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
  PY=python3; STEP_ARGS=; ABLATION=(--seeds 5 --jobs 4 optim.epochs=24 "optim.milestones=[18]")
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.csv"
fi

start=$SECONDS
(cd benchmarks && $PY gpu_step.py $STEP_ARGS) > "$OUT/gpu_step.json" 2> "$OUT/gpu_step.log"
echo "gpu_step.py: exit $? after $((SECONDS - start)) s" | tee -a "$OUT/session.log"

start=$SECONDS
timeout "${ABLATION_S:-300}" $PY benchmarks/ablation.py --runs "$OUT/ablation-runs" "${ABLATION[@]}" \
  > "$OUT/ablation.json" 2> "$OUT/ablation.log"
echo "ablation.py: exit $? after $((SECONDS - start)) s (124: stopped at ABLATION_S; finished runs kept)" \
  | tee -a "$OUT/session.log"
tar czf "$OUT/ablation-runs.tgz" -C "$OUT" ablation-runs && rm -r "$OUT/ablation-runs"
tail -n 3 "$OUT"/*.log
