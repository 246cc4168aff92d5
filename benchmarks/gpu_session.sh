#!/usr/bin/env bash
# One lent GPU's measurements, in one command that fits a short lease.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_session.sh
#
# Runs, on the config in $CONFIG (default configs/default.py): the suite's
# train cases (each phase at batch $BATCH, the joint step at $SMALL_BATCH
# and $BIG_BATCH, float32, rematerialisation, space-to-depth output
# convolutions), the joint step with the ground truth's known labels (what
# the twin computes) and with 'direct' transposed convolutions, inference
# (batch 1, 8, 32 at 256x256 and one 1024x2048 frame), the PyTorch twin on
# the joint step, inference and (time allowing) the sp and sg steps, and a
# profile of the joint step with its summary by kind of operation.
#
# The cases run one after another, most wanted first, each only while the
# deadline ($DEADLINE seconds from the start) leaves time for it; JAX's
# persistent compilation cache and XLA's autotuning cache (both under
# $JAX_COMPILATION_CACHE_DIR) let a case reuse what an earlier one tuned.
# (Compiling every case at once in parallel processes was tried on an H200
# on 2026-11-30: fifteen processes autotuning convolutions on one GPU took
# 277 s and finished one.) Everything lands in $OUT/session.tar.gz,
# rewritten after each case, so a run cut short still brings back what it
# measured (rerun with ONLY=name,name for the rest): results/CASE.json (the
# benchmark's own keys), logs/, the joint step's trace, its summary by kind
# of operation and its optimised HLO (which names each fusion's ops), and
# machine.txt.
#
# On the `device` machine, wheels of what it lacks (flax, ml-collections)
# travel in .whl/ and are installed to /tmp/site first. $PYTHON runs both
# JAX and the twin (the machine's python3 holds torch); $TORCH_PYTHON
# overrides it for the twin.

set -uo pipefail

out=${OUT:?set OUT to the folder that comes back}
config=${CONFIG:-configs/default.py}
batch=${BATCH:-32}
small_batch=${SMALL_BATCH:-8}
big_batch=${BIG_BATCH:-64}
deadline=${DEADLINE:-500}
python=${PYTHON:-python3}
torch_python=${TORCH_PYTHON:-$python}
timing=${TIMING:---warmup=2 --windows=5 --window_calls=5}
work=${WORK:-/tmp/gpu_session}

rm -rf "$work" && mkdir -p "$work"/{results,logs,trace}
if [ -d .whl ]; then
  "$python" -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/spg_jax_cache}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/spg_inductor_cache}

pack() {  # The folder that comes back, replaced whole.
  tar -czf "$out/session.tar.gz.partial" -C "$work" . &&
    mv "$out/session.tar.gz.partial" "$out/session.tar.gz"
}

{
  date -u
  git rev-parse HEAD 2>/dev/null
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm \
      --format=csv 2>/dev/null
  nproc
  "$python" -c "import sys, jax, jaxlib, flax; print(sys.version); \
print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'flax', \
flax.__version__); print(jax.devices())"
  "$torch_python" -c "import torch; print('torch', torch.__version__, \
torch.version.cuda, torch.backends.cudnn.version())" 2>&1
} > "$work/machine.txt" 2>&1
cat "$work/machine.txt"

# name | program (jax or torch) | arguments;
# in the order they are timed. $ONLY (comma-separated names) keeps a few.
train="--config=$config --mode=train"
infer="--config=$config --mode=infer"
direct="--config.model.sp_generator.upsampling_form=direct --config.model.sg_generator.upsampling_form=direct"
s2d="--config.model.sp_generator.output_conv_form=space_to_depth --config.model.sg_generator.output_conv_form=space_to_depth"
all_cases=(
  "joint$batch|jax|$train --phase=joint --config.batch_size=$batch"
  "joint${batch}_gt|jax|$train --phase=joint --config.batch_size=$batch --config.known_labels=ground_truth"
  "twin_joint$batch|torch|$train --phase=joint --config.batch_size=$batch"
  "joint$small_batch|jax|$train --phase=joint --config.batch_size=$small_batch"
  "sp$batch|jax|$train --phase=sp --config.batch_size=$batch"
  "sg$batch|jax|$train --phase=sg --config.batch_size=$batch"
  "joint$big_batch|jax|$train --phase=joint --config.batch_size=$big_batch"
  "joint${batch}_f32|jax|$train --phase=joint --config.batch_size=$batch --config.dtype=float32"
  "joint${batch}_remat|jax|$train --phase=joint --config.batch_size=$batch --config.model.remat=conv_outputs"
  "joint${batch}_s2d|jax|$train --phase=joint --config.batch_size=$batch $s2d"
  "twin_infer|torch|$infer"
  "infer|jax|$infer"
  "joint${batch}_direct|jax|$train --phase=joint --config.batch_size=$batch $direct"
  "joint${big_batch}_direct|jax|$train --phase=joint --config.batch_size=$big_batch $direct"
  "infer_direct|jax|$infer $direct"
  "twin_sp$batch|torch|$train --phase=sp --config.batch_size=$batch"
  "twin_sg$batch|torch|$train --phase=sg --config.batch_size=$batch"
)
cases=()
for entry in "${all_cases[@]}"; do
  if [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",${entry%%|*},"* ]]; then
    cases+=("$entry")
  fi
done

command_of() {  # program -> the interpreter and module that measure it
  if [ "$1" = torch ]; then
    echo "$torch_python -m benchmarks.torch_reference"
  else
    echo "$python -m spg_jax.benchmarking.benchmark"
  fi
}

for entry in "${cases[@]}"; do
  IFS='|' read -r name program arguments <<< "$entry"
  left=$((deadline - SECONDS))
  if [ "$left" -lt 30 ]; then
    echo "skipped $name: ${left} s left"
    continue
  fi
  extra=""
  if [ "$name" = "joint$batch" ]; then
    extra="--profile_dir=$work/profile --profile_steps=3"
  fi
  start=$SECONDS
  timeout "$left" $(command_of "$program") $arguments $timing $extra \
      --json="$work/results/$name.json" > "$work/logs/$name.log" 2>&1
  echo "$name: rc $? in $((SECONDS - start)) s"
  if [ -n "$extra" ]; then
    trace=$(find "$work/profile" -name '*.trace.json.gz' | head -1)
    if [ -n "$trace" ]; then
      mv "$trace" "$work/trace/joint$batch.trace.json.gz"
      gzip -c "$work/profile/optimized_hlo.txt" \
          > "$work/trace/joint$batch.optimized_hlo.txt.gz"
      "$python" -m benchmarks.trace_summary "$work/trace" --steps=3 --by_kind \
          > "$work/trace/summary.md" 2>&1
    fi
    rm -rf "$work/profile"
  fi
  pack
done

"$python" - "$work/results" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
  r = json.loads(path.read_text())
  mfu = r.get("mfu")
  print(f"{path.stem:24s} {r.get('step_time_ms', 0):9.2f} ms"
        f" {r.get('images_per_sec', 0):9.1f} img/s"
        f" mfu {'n/a' if mfu is None else f'{100 * mfu:.1f}%'}"
        f" peak {r.get('peak_memory_bytes', 0) / 2**30:.2f} GiB")
EOF
[ -f "$work/trace/summary.md" ] && head -40 "$work/trace/summary.md"
pack
echo "done in ${SECONDS} s"
