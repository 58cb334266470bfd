#!/usr/bin/env bash
# The GPU path of unihema in one prepared script (about 5 minutes on one H100):
#   1. generate a small synthetic set;
#   2. train the base model (configs/_base_/models/base.yaml) for STEPS steps on CUDA under bf16;
#   3. single-GPU DeepSpeed ZeRO-2, then ZeRO-3: STEPS/2 steps, then a resume to STEPS;
#   4. convert the ZeRO-3 checkpoint, score both models on the synthetic test split on the GPU;
#   5. time a forward pass (detect on one field) on the GPU.
# Every command's output goes to OUT/*.log and a summary to OUT/summary.txt; the script stops
# at the first failing step and says which.
#
#   bash experiments/gpu_check.sh runs/gpu_check                 # on a machine with a GPU
#   CPU_DRY_RUN=1 bash experiments/gpu_check.sh /tmp/gpu_check    # the same steps on a CPU:
#       tiny model, 4 steps, fp32, to check the script itself (about 4 minutes on 2 cores)
set -euo pipefail

OUT=${1:-runs/gpu_check}
PY=${PYTHON:-python}
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$REPO"

if [[ "${CPU_DRY_RUN:-0}" == 1 ]]; then
    DEVICE=cpu; STEPS=${STEPS:-4}; MODEL=tiny; PRECISION=auto; BATCH=2; SIZE=128; FIELDS=8
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
    DEVICE=cuda; STEPS=${STEPS:-300}; MODEL=base; PRECISION=bf16; BATCH=16; SIZE=256; FIELDS=200
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else
        'no CUDA device: run with CPU_DRY_RUN=1 to check the script on a CPU')"
fi
HALF=$((STEPS / 2))
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

say() { echo "$*" | tee -a "$SUMMARY"; }
step() {  # step NAME COMMAND...: run, log, time; stop the script on failure
    local name=$1; shift
    local t0=$SECONDS
    if "$@" > "$OUT/$name.log" 2>&1; then
        say "ok    $name ($((SECONDS - t0)) s)"
    else
        say "FAIL  $name ($((SECONDS - t0)) s): see $OUT/$name.log"; tail -n 20 "$OUT/$name.log"
        exit 1
    fi
}

say "unihema GPU check: device $DEVICE, model $MODEL, $STEPS steps, precision $PRECISION"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" | tee -a "$SUMMARY"

# one config for every run: the synthetic tasks on the set generated here
cat > "$OUT/config.yaml" <<EOF
_base_: [$REPO/configs/_base_/default.yaml, $REPO/configs/_base_/synthetic.yaml,
         $REPO/configs/_base_/models/$MODEL.yaml]
name: gpu-check
data:
  image_size: $SIZE
  batch_size: $BATCH
  train:
    - {name: synthetic_smear, root: $OUT/data, split: train,
       classes: {detect: &lineages [red blood cell, white blood cell, platelet, malaria parasite]}}
  val: []
  test:
    - {name: synthetic_smear, root: $OUT/data, split: test, classes: {detect: *lineages}}
train:
  max_steps: $STEPS
  warmup_steps: $HALF
  precision: $PRECISION
  eval_every: 0
  save_every: $HALF
EOF
cat > "$OUT/suite.yaml" <<EOF
name: gpu-check
batch_size: $BATCH
entries:
  - {dataset: synthetic_smear, root: $OUT/data, split: test, task: detect,
     classes: {detect: [red blood cell, white blood cell, platelet, malaria parasite]}}
  - {dataset: synthetic_smear, root: $OUT/data, split: test, task: segment}
  - {dataset: synthetic_smear, root: $OUT/data, split: test, task: vqa, limit: 40}
EOF

step data "$PY" -m unihema data generate --out "$OUT/data" --train "$FIELDS" --val 4 \
    --test 16 --size "$SIZE" --workers 4 --no-progress
step plain "$PY" -m unihema train --config "$OUT/config.yaml" --no-progress \
    "train.output_dir=$OUT/plain"
for zero in zero2 zero3; do
    # torchrun with one process: DeepSpeed's own launcher needs ssh/pdsh for nothing here
    ds=(-m torch.distributed.run --nproc_per_node 1 --master_port $((29500 + RANDOM % 1000))
        tools/train.py --config "$OUT/config.yaml" --deepspeed "configs/deepspeed/$zero.json"
        --no-progress)
    # the overrides last: argparse reads one run of KEY=VALUE words
    step "$zero" "$PY" "${ds[@]}" "train.output_dir=$OUT/$zero" "train.max_steps=$HALF" \
        "train.warmup_steps=1"
    step "$zero-resume" "$PY" "${ds[@]}" --resume auto "train.output_dir=$OUT/$zero" \
        "train.warmup_steps=1"
    grep -q "resum" "$OUT/$zero-resume.log" || { say "FAIL  $zero-resume did not resume"; exit 1; }
done
step convert "$PY" -m unihema convert-checkpoint "$OUT/zero3" "$OUT/zero3_model"
step eval "$PY" -m unihema eval --suite "$OUT/suite.yaml" --model "$OUT/plain/model" \
    --model "$OUT/zero3_model" --device "$DEVICE" --no-plots --no-progress --out "$OUT/eval"
step forward "$PY" - "$OUT" "$DEVICE" <<'EOF'
import sys, time
from pathlib import Path

import torch

from unihema.api import UniHemaPipeline

out, device = Path(sys.argv[1]), sys.argv[2]
pipe = UniHemaPipeline.from_pretrained(out / "plain" / "model", device=device)
image = sorted((out / "data" / "test" / "images").glob("*.png"))[0]
times = []
for i in range(13):
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    pipe.detect(image)
    if device == "cuda":
        torch.cuda.synchronize()
    times.append(time.perf_counter() - t0)
times = sorted(times[3:])  # the first runs warm up kernels and caches
print(f"detect on {image.name}, {device}: min {times[0] * 1e3:.1f} ms, "
      f"median {times[len(times) // 2] * 1e3:.1f} ms, max {times[-1] * 1e3:.1f} ms (10 runs)")
if device == "cuda":
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
EOF
say "$(tail -n 2 "$OUT/forward.log")"
say "steps trained: $(grep -ho 'trained to step [0-9]*' "$OUT"/plain.log "$OUT"/zero3-resume.log | tr '\n' ';')"
say "scores: $OUT/eval/results.md"
grep -A6 "^## detect" "$OUT/eval/results.md" | tee -a "$SUMMARY"
say "all steps passed"
