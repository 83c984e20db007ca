#!/usr/bin/env bash
# Every GPU measurement of the executor's fast mode in one run (GPU time is scarce): writes results/.
#
#   bash scripts/bench_gpu.sh /path/to/LTH14-mar-checkout          # on a GPU machine (estimated 10-15 min on one H100)
#   QUICK=1 bash scripts/bench_gpu.sh /path/to/LTH14-mar-checkout  # the same steps on tiny models, a CPU and fp32,
#                                                                  # into runs/bench_gpu_dry (a dry run of the script)
# 1. official sample_tokens vs ours eager vs ours mode=compile, MAR-B, 64-step baseline, batch 64, bf16
# 2. MAR-B/L/H at batch 64 (64-step baseline, GtR-16, GtR-8) and MAR-H at batch 256 (GtR-16, GtR-8), eager beside
#    compile
#    (s/img, achieved TFLOP/s and share of the dense bf16 peak, peak memory, compile startup)
# 3. LightGen, Table 2's latency rows (fp16), eager beside compile
# 4. on a GPU: tests/test_cuda.py, then MAR-B/L/H at batch 64 with mode=cudagraphs beside compile (results/cudagraphs/)
set -euo pipefail
official=${1:?usage: bash scripts/bench_gpu.sh /path/to/LTH14-mar-checkout}
cd "$(dirname "$0")/.."
if [ "${QUICK:-0}" = 1 ]; then
  out=runs/bench_gpu_dry; device=cpu; mars="mar_tiny"; big=mar_tiny; lightgen=lightgen_tiny
  b64=2; b256=3; b4=2; iters=4; repeats=1; half=fp32; t2i_half=fp32; mkdir -p "$out"
else
  out=results; device=cuda; mars="mar_b mar_l mar_h"; big=mar_h; lightgen=lightgen
  b64=64; b256=256; b4=4; iters=64; repeats=1; half=bf16; t2i_half=fp16
fi
# Each benchmark process starts on an empty Inductor cache, so every compile startup (and break-even) below is what a
# fresh machine pays, not one warmed by the step before.
fresh_cache() { export TORCHINDUCTOR_CACHE_DIR="$(mktemp -d)"; }
fresh_cache
python scripts/bench_executor.py --official-repo "$official" --model "${mars%% *}" --batch "$b64" \
  --num-iter "$iters" --precision "$half" --repeats "$repeats" --device "$device" \
  --out "$out/bench_executor_${device}_${mars%% *}_${half}_b$b64"
for model in $mars; do
  fresh_cache
  python scripts/bench_latency.py --models "$model" --batch "$b64" --precision "$half" --repeats "$repeats" \
    --device "$device" --samplers mar gtr_16 gtr_8 --modes eager compile --out-dir "$out"
done
fresh_cache
python scripts/bench_latency.py --models "$big" --batch "$b256" --precision "$half" --repeats "$repeats" \
  --device "$device" --samplers gtr_16 gtr_8 --modes eager compile --out-dir "$out"
fresh_cache
python scripts/bench_latency.py --models "$lightgen" --batch "$b4" --precision "$t2i_half" --repeats "$repeats" \
  --device "$device" --samplers lightgen_32 lightgen_16 lazymar_lightgen_16 gtr_lightgen lightgen_12 \
  lazymar_lightgen_12 gtr_lightgen_12 --modes eager compile --out-dir "$out"
# 4. mode=cudagraphs (compile + CUDA-graph replay; GPU only, never measured before): last, and a failure here keeps
#    everything above
if [ "$device" = cuda ]; then
  python -m pytest -q tests/test_cuda.py || echo "tests/test_cuda.py failed: see above"
  fresh_cache
  python scripts/bench_latency.py --models $mars --batch "$b64" --precision "$half" --repeats "$repeats" \
    --device cuda --samplers mar gtr_16 gtr_8 --modes compile cudagraphs --out-dir "$out/cudagraphs" \
    || echo "mode=cudagraphs failed: the rows above stand"
fi
echo "wrote $out"
