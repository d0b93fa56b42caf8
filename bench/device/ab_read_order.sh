#!/bin/bash
# A/B on one box with the tokenizer loaded natively: A = imports (torch, tokenizers) before the reads on a first
# build, B = reads first. Then the cold import/tokenizer probes.
set -u
G=$(pwd)
exec > >(tee "$OUT/log.txt") 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
export LORAG_LLAMA_CPP_DIR=$G/llama.cpp HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
W=/root/bw; mkdir -p $W
cd "$G/src" && PYTHONPATH=/tmp/site:$G/src python3 bench/device/make_model.py "$W/base" "$W/lora" --layers 28 || exit 1
for v in src srcB src srcB; do
  cd "$G/$v"; rm -rf $W/bw-$v ~/.cache/lorag/fast-skeletons
  echo "=== variant $v"
  PYTHONPATH=/tmp/site:$G/$v timeout 200 python3 bench/build_speed.py --floor-sample 2000000000 --base "$W/base" \
    --adapter "$W/lora" --work "$W/bw-$v" --qtype Q4_K_M --device cuda --warm-run --fast-only --threads 16 \
    --drop-caches --json-out "$OUT/result-$v-$RANDOM.json" 2>&1 | grep -v "^\s*$" | tail -12
done
cd "$G/src" && PYTHONPATH=/tmp/site:$G/src timeout 240 python3 bench/device/import_cost.py "$W/base"
