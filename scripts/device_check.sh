#!/usr/bin/env bash
# The GPU check of issue 25, one command on a machine with a CUDA GPU; within 8 minutes by default
# (every stage has its own limit: 40 + 60 + 110 + 2 x 75 + 45 + 75 = 480 s).
#   scripts/device_check.sh                # writes $OUT/device_check.json and $OUT/device_check.log
#   QUICK=1 scripts/device_check.sh        # smaller inputs, fewer repetitions (at most 5 minutes)
# Stages, each under its own time limit so that one failure cannot hide the others' figures:
#   1. the machine: GPU, driver, torch, measured bf16 and fp32 matrix-product rates;
#   2. the `cuda`-marked tests (pytest -m cuda);
#   3. parity and forward throughput of RNA-FM and GPN at the official sizes, random weights, nucfm
#      vs the official packages on this GPU, fp32 (<= 1e-4) and bf16 (bench/device_parity.py);
#   4. embed / vep / fold throughput, nucfm vs the official code on this GPU, fp32 and bf16
#      (bench/gpu_throughput.py; QUICK: bf16 only);
#   5. a training step of each configs/gpu/ model on a batch already on the GPU (bench/gpu_step_profile.py);
#   6. (not QUICK) the same commands as a user runs them, a process each (bench/device_cli.py).
# Needs the official packages (rna-fm, gpn) importable; on a machine without a registry carry them
# as wheels (scripts/device_run.sh does).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/device_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
LOG=${CHECK_LOG:-$OUT/device_check.log}
TMP=$(mktemp -d)
if [ "${QUICK:-0}" = 1 ]; then
  SCALE=0.3; REPS=5; T_TEST=45; T_PAR=75; T_THR=60; T_PROF=45; T_CLI=0; PRECISIONS=bf16
  THR_SIZE="--embed-seqs 500 --fold-seqs 20 --variants 2048"
else SCALE=1; REPS=10; T_TEST=60; T_PAR=110; T_THR=75; T_PROF=45; T_CLI=75; PRECISIONS="fp32 bf16"; THR_SIZE=""; fi

merge() {  # device_check.json after every stage: a run cut short keeps what it measured
$PY - "$TMP" "$OUT/device_check.json" <<'PY'
import json, sys
from pathlib import Path
tmp, out = Path(sys.argv[1]), Path(sys.argv[2])
def load(name):
    p = tmp / name
    try:
        return json.loads(p.read_text())
    except Exception as e:
        return {"missing": f"{name}: {type(e).__name__}"}
tests = (tmp / "tests.txt").read_text().strip().splitlines() if (tmp / "tests.txt").exists() else []
out.write_text(json.dumps({"machine": load("machine.json"), "cuda_tests": tests[-1:] or ["not run"],
                           "parity": load("parity.json"), "throughput_fp32": load("throughput_fp32.json"),
                           "throughput_bf16": load("throughput_bf16.json"), "training_step": load("profile.json"),
                           "cli": load("cli.json")},
                          indent=1) + "\n")
PY
}

stage() { echo "== $1 ($(date -u +%T))" | tee -a "$LOG"; }

stage "1. machine"
timeout 40 $PY - >"$TMP/machine.json" 2>>"$LOG" <<'PY'
import json, torch
from nucfm.train.pretrain import matmul_peak
d = torch.device("cuda")
print(json.dumps({"gpu": torch.cuda.get_device_name(d), "torch": torch.__version__, "cuda": torch.version.cuda,
                  "memory_gib": torch.cuda.get_device_properties(d).total_memory / 2**30,
                  "bf16_matmul_tflops": matmul_peak(d, torch.bfloat16) / 1e12,
                  "fp32_matmul_tflops": matmul_peak(d, torch.float32, 4096) / 1e12}))
PY
cat "$TMP/machine.json" | tee -a "$LOG"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$LOG" 2>&1

merge
stage "2. cuda tests"
CUDA_TESTS=$(grep -l "mark.cuda" tests/test_*.py 2>/dev/null)  # only these files: the rest need CPU-side extras
if [ -n "$CUDA_TESTS" ]; then
  timeout $T_TEST $PY -m pytest -m cuda -q -rfs -p no:cacheprovider $CUDA_TESTS 2>&1 | tail -60 | tee "$TMP/tests.txt" >>"$LOG"
else echo "no cuda-marked tests" | tee "$TMP/tests.txt" >>"$LOG"; fi

merge
stage "3. parity and forward throughput (official sizes, random weights)"
timeout $T_PAR $PY bench/device_parity.py --device cuda --reps $REPS -o "$TMP/parity.json" >>"$LOG" 2>&1

merge
stage "4. embed / vep / fold throughput, nucfm vs the official code on this GPU (bench/gpu_throughput.py)"
for prec in $PRECISIONS; do
  timeout $T_THR $PY bench/gpu_throughput.py --device cuda --precision $prec $THR_SIZE -o "$TMP/throughput_$prec.json" \
    >>"$LOG" 2>&1
done

merge
stage "5. where a training step's time goes (bench/gpu_step_profile.py)"
timeout $T_PROF $PY bench/gpu_step_profile.py --device cuda -o "$TMP/profile.json" >>"$LOG" 2>&1

if [ "${QUICK:-0}" != 1 ]; then
  merge
  stage "6. command-line throughput (a fresh process per command, model load and writing included)"
  timeout $T_CLI $PY bench/device_cli.py --device cuda --scale $SCALE --timeout 40 -o "$TMP/cli.json" >>"$LOG" 2>&1
fi

merge
echo "device check written to $OUT/device_check.json" | tee -a "$LOG"
rm -rf "$TMP"
