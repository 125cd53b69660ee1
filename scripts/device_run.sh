#!/usr/bin/env bash
# Everything this project runs on a lent GPU in one call (the device tool's 15-minute budget):
# the two one-GPU training commands of issue 26 first (DNA, then RNA), then the quick device check of
# issue 25. Run from the repository root with the packed data (.gpu/, scripts/pack_prepared.py) and the
# wheels (.whl/) carried beside the working tree:
#   scripts/device_run.sh [DNA_MINUTES] [RNA_MINUTES]
# (DEVICE=cpu EXTRA_DNA="model.num_layers=2 ..." EXTRA_RNA="..." runs it on the CPU at a tiny size: a smoke test.)
# Results under $OUT: dna.tar.part-* and rna.tar.part-* (fp16 model, eval.json, MODEL_CARD.md,
# metrics.jsonl, config.yaml), dna_signal.json, rna_signal.json, device_check.json, and run.log.
set -uo pipefail
cd "$(dirname "$0")/.."
DNA_MIN=${1:-2.5}; RNA_MIN=${2:-1.4}
OUT=${OUT:-out/device_run}; mkdir -p "$OUT" runs
LOG="$OUT/run.log"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
for w in .whl/*.whl; do  # one at a time: a wheel this platform cannot take must not stop the others
  [ -f "$w" ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$w" >>"$LOG" 2>&1
done
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
for d in .gpu/dna .gpu/rna; do (cd $d && for f in *.bin.gz; do [ -f "${f%.gz}" ] || gunzip -k "$f"; done); done
nvidia-smi >>"$LOG" 2>&1
train() {  # NAME CONFIG MINUTES TIMEOUT DESCRIPTION
  local extra="EXTRA_${1^^}"
  echo "== train $1 ($(date -u +%T))" >>"$LOG"
  timeout "$4" python3 -m nucfm pretrain --config "$2" --device "${DEVICE:-cuda}" output=runs/gpu-$1 \
    data.prepared=.gpu/$1 train.max_minutes="$3" --export "runs/export-$1" --description "$5" ${!extra:-} >>"$LOG" 2>&1
  echo "rc $? ($(date -u +%T))" >>"$LOG"
  mkdir -p "runs/export-$1"; cp runs/gpu-$1/metrics.jsonl runs/gpu-$1/config.yaml "runs/export-$1/" 2>/dev/null
  # at most 16 MiB a file comes back: the tar in parts (cat NAME.tar.part-* | tar -x)
  tar -cf - -C runs "export-$1" | split -b 16000000 - "$OUT/$1.tar.part-"
}
train dna configs/gpu/dna.yaml "$DNA_MIN" 300 \
  "GPN-style dilated ConvNet MLM on A. thaliana chr1 + A. lyrata chr1-2, trained on one GPU"
train rna configs/gpu/rna.yaml "$RNA_MIN" 200 \
  "RNA-FM-style transformer MLM on Rfam 14.2 seeds + miRBase hairpins, trained on one GPU"
echo "== held-out evaluation ($(date -u +%T))" >>"$LOG"
# DNA: the annotation-labelled SNVs of the held-out block (bench/dna_signal.py --table, built where
# ../shared is), the new model against the shipped default and the +-3-mer baseline, scored here
timeout 90 python3 bench/dna_signal.py --genome .gpu/eval/heldout_chr1.fa.gz --gff unused \
  --table .gpu/eval/dna_signal_snvs.tsv --models runs/export-dna nucfm-dna-cnn12-1M-tair10-v2 \
  --device "${DEVICE:-cuda}" -o "$OUT/dna_signal.json" >>"$LOG" 2>&1
# RNA: kNN type accuracy of pooled embeddings on the nRC test set (last layer), vs 3-mers
mkdir -p runs/rna-eval
for layer in -1; do
  timeout 75 python3 -m nucfm embed -m runs/export-rna -i .gpu/eval/test_2600.fasta.gz --pool mean --layer $layer \
    --device "${DEVICE:-cuda}" --no-progress -o "runs/rna-eval/nrc_test_layer${layer}.h5" >>"$LOG" 2>&1
done
timeout 60 python3 bench/rna_signal.py --fasta .gpu/eval/test_2600.fasta.gz --embeddings runs/rna-eval/*.h5 \
  -o "$OUT/rna_signal.json" >>"$LOG" 2>&1
[ "${DEVICE:-cuda}" = cuda ] && OUT="$OUT" CHECK_LOG="$LOG" QUICK=1 timeout 190 scripts/device_check.sh >>"$LOG" 2>&1
echo "== done ($(date -u +%T))" >>"$LOG"
