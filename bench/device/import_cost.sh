#!/bin/bash
# One device call: the cost of a first build's imports on a dropped page cache (bench/device/import_cost.py).
set -u
R=$(pwd); C=$(cd "${CARRY:-.carry/gf}" && pwd)
exec > >(tee "$OUT/log.txt") 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$C"/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$R HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python3 bench/device/make_model.py /root/m/base /root/m/lora --layers 1 --hidden 256 --intermediate 512 --heads 4 --kv-heads 2 || exit 1
du -sh $(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))") /usr/local/lib/python3*/*-packages/nvidia 2>/dev/null
python3 bench/device/import_cost.py /root/m/base
