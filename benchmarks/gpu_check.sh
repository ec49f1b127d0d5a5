#!/usr/bin/env bash
# GPU check of BASRec (see benchmarks/gpu_check.py): step time and peak memory on Beauty at the
# published SASRec settings, one stage-2 epoch, the plain/BASRec step ratio, a 2-GPU DDP run when
# two GPUs exist, then one summary table. Installs nothing; stops after 9.5 minutes.
#
#   bash benchmarks/gpu_check.sh            # CUDA machine
#   bash benchmarks/gpu_check.sh --cpu      # no GPU: the same checks on CPU with tiny data
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${PYTHON:-}" ]]; then
  py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
else
  py=python3
fi
if ! "$py" -c "import torch, recbole, recbole_basrec" 2>/dev/null; then
  echo "gpu_check: $py cannot import torch, recbole and recbole_basrec; set PYTHON to the project's interpreter" >&2
  exit 2
fi
"$py" -c "import torch; print('gpu_check: torch', torch.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.device_count(), 'GPU(s)')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec timeout 570 "$py" benchmarks/gpu_check.py "$@"
