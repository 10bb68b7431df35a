#!/usr/bin/env bash
# The GPU checks in one call, for a lent GPU machine (the device tool runs it in a copy of the
# working tree and brings back what it writes under $OUT):
#   1. ResNet-50 at 224 px, images/s of train_loop in fp32 and in bf16 + channels-last against
#      a plain fp32 torchvision-style loop (benchmarks/train_images.py);
#   2. a 4-unit Ray run sharing one GPU (executor.gpus_per_unit: 0.25) on the digits task at
#      64 px with ResNet-18, its wall time and metrics.
# It installs into .venv-gpu (torch from PyPI: the CUDA build) unless PY names a Python that
# already has fairensemble. GPU_CHECK_SMOKE=1 runs the same steps tiny and on the CPU, to try
# the script where no GPU is lent:
#   PY=.venv/bin/python GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check}"
mkdir -p "$out"
if [ -z "${PY:-}" ]; then
    python3 -m venv .venv-gpu
    .venv-gpu/bin/pip install -q --upgrade pip
    .venv-gpu/bin/pip install -q torch
    .venv-gpu/bin/pip install -q -e ".[ray]"
    PY=.venv-gpu/bin/python
fi
if [ "${GPU_CHECK_SMOKE:-0}" = 1 ]; then
    device=cpu; model=resnet18; size=32; n=64; gpus=0; ray_size=16; ray_model=cnn
else
    device=cuda; model=resnet50; size=224; n=2048; gpus=0.25; ray_size=64; ray_model=resnet18
    nvidia-smi > "$out/nvidia-smi.txt"
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    | tee "$out/torch.txt"
"$PY" benchmarks/train_images.py --model "$model" --image-size "$size" --n "$n" --epochs 1 \
    --batch-size 64 --repeats 2 --device "$device" --precision fp32 --precision bf16 \
    | tee "$out/train_images.txt"
cat > "$out/ray4.yaml" <<YAML
name: gpu-check-ray
dataset: {kind: digits, image_size: $ray_size, pixel_noise: 0.25}
ratios: [0.0, 0.35, 0.65, 1.0]
train_size: 400
replicates: 1
model: {name: $ray_model}
train: {optimizer: sgd, lr: 0.05, epochs: 3, batch_size: 64, device: auto, precision: bf16}
ensemble: {members: 2}
executor: {kind: ray, workers: 4, cpus_per_unit: 1, gpus_per_unit: $gpus}
YAML
start=$(date +%s)
"$PY" -m fairensemble run "$out/ray4.yaml" --out "$out/ray4" 2>&1 | tail -n 25 | tee "$out/ray4.txt"
echo "{\"ray4_wall_s\": $(( $(date +%s) - start )), \"gpus_per_unit\": $gpus}" \
    | tee "$out/ray4.json"
