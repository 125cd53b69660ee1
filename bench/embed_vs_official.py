"""Embedding throughput: official `fm` RNA-FM vs nucfm, identical random weights, side by side.

Workload: the bpRNA TS0 sequences (``../shared/data/ss/bprna/TS0.dbn``; a generated length mix
when absent). Both models are the full RNA-FM size (12 layers, 640 dim, 20 heads), fp32, the same
thread count. The official model is used as its README shows (``batch_converter`` +
``model(tokens, repr_layers=[12])``), one sequence at a time and in batches of 16 in file order;
nucfm uses ``model.embed`` (length buckets, no LM head). The share of the machine's fp32 matmul
peak is measured in the same run (a large square matmul).

    python bench/embed_vs_official.py                 # all 1,305 TS0 sequences
    python bench/embed_vs_official.py --limit 300     # every k-th sequence, same length mix
    python bench/embed_vs_official.py --random-length 60 --n 1000   # short records: per-record overhead
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_TS0 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ss" / "bprna" / "TS0.dbn"


def workload(path: Path, limit: int | None) -> tuple[list[str], str]:
    if path.exists():
        from nucfm.io.structure import read_dbn

        # upper case: the official alphabet maps lower-case letters to <unk>, nucfm folds case
        seqs, source = [r.seq.upper() for r in read_dbn(path)], str(path)
    else:
        rng = np.random.default_rng(0)
        lengths = np.clip(rng.lognormal(4.7, 0.6, 1305).astype(int), 20, 500)
        seqs = ["".join(rng.choice(list("ACGU"), n)) for n in lengths]
        source = "generated length mix (TS0 absent)"
    if limit and limit < len(seqs):
        step = len(seqs) / limit
        seqs = [seqs[int(i * step)] for i in range(limit)]
    return seqs, source


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


def flops(seqs, layers=12, d=640, f=5120) -> float:
    """Forward FLOPs of the encoder (no LM head): linear layers plus attention products."""
    total = 0.0
    for s in seqs:
        t = len(s) + 2
        total += layers * (t * (8 * d * d + 4 * d * f) + 4 * t * t * d)
    return total


def official_model():
    import fm

    args = argparse.Namespace(arch="roberta_large", layers=12, embed_dim=640, ffn_embed_dim=5120,
                         attention_heads=20, max_positions=1024, emb_layer_norm_before=True)
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    model = fm.BioBertModel(args, alphabet).eval()
    return model, alphabet, args


def time_official(model, alphabet, seqs, batch: int) -> float:
    conv = alphabet.get_batch_converter()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(seqs), batch):
            _, _, tokens = conv([(str(j), s) for j, s in enumerate(seqs[i : i + batch])])
            out = model(tokens, repr_layers=[12])
            _ = out["representations"][12]
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ts0", type=Path, default=DEFAULT_TS0)
    ap.add_argument("--limit", type=int, default=None, help="use every k-th sequence, this many in all")
    ap.add_argument("--random-length", type=int, default=None,
                    help="instead of TS0: --n random RNAs of this length (e.g. 60: per-record overhead)")
    ap.add_argument("--n", type=int, default=1000, help="records of the --random-length workload")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-tokens", type=int, default=1024)
    ap.add_argument("--skip-official", action="store_true")
    ap.add_argument("--int8", action="store_true", help="also time nucfm's int8 mode and report its cosine "
                    "similarity to fp32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from nucfm import load_model
    from nucfm.checkpoint.rnafm import write_rnafm_pth

    if args.random_length:
        rng = np.random.default_rng(0)
        seqs = ["".join(rng.choice(list("ACGU"), args.random_length)) for _ in range(args.n)]
        source = f"{args.n} random RNAs of {args.random_length} nt"
    else:
        seqs, source = workload(args.ts0, args.limit)
    nt = sum(len(s) for s in seqs)
    print(f"workload: {len(seqs)} sequences, {nt} nt, mean length {nt / len(seqs):.0f} ({source}); "
          f"{args.threads} threads, fp32, torch {torch.__version__}")

    ref, alphabet, ref_args = official_model()
    with tempfile.TemporaryDirectory() as tmp:
        pth = Path(tmp) / "RNA-FM_pretrained.pth"
        write_rnafm_pth(ref.state_dict(), ref_args, pth)
        ours = load_model(pth)

    # correctness on a few sequences before timing
    check = seqs[:4]
    with torch.no_grad():
        _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(check)])
        r = ref(tokens, repr_layers=[12])["representations"][12]
    e = ours.embed(check)
    diff = max(float(np.abs(e[i] - r[i, 1 : len(s) + 1].numpy()).max()) for i, s in enumerate(check))
    print(f"max |nucfm - official| on 4 sequences: {diff:.2e}")

    peak = matmul_peak()
    rows = []
    ours.embed(seqs[:8])  # warm-up
    t = time.perf_counter()
    fp32 = ours.embed(seqs, batch_tokens=args.batch_tokens)
    t_ours = time.perf_counter() - t
    rows.append(("nucfm (length buckets)", t_ours))
    cosine = None
    if args.int8:
        from nucfm.models.quantize import quantize_int8

        q = quantize_int8(ours)
        q.embed(seqs[:8])
        t = time.perf_counter()
        int8 = q.embed(seqs, batch_tokens=args.batch_tokens)
        rows.append(("nucfm int8 (dynamic quantization)", time.perf_counter() - t))
        a, b = np.concatenate(fp32), np.concatenate(int8)
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    n_ours = len(rows)
    if not args.skip_official:
        ref(alphabet.get_batch_converter()([("w", seqs[0])])[2])  # warm-up
        rows.append(("official, batch 1", time_official(ref, alphabet, seqs, 1)))
        rows.append(("official, batch 16 (file order)", time_official(ref, alphabet, seqs, 16)))
    peak_after = matmul_peak()

    print(f"\nfp32 matmul peak: {peak / 1e9:.1f} GFLOP/s before, {peak_after / 1e9:.1f} after")
    print(f"{'mode':34s} {'seconds':>9s} {'nt/s':>9s} {'records/s':>10s}")
    for name, s in rows:
        print(f"{name:34s} {s:9.1f} {nt / s:9.1f} {len(seqs) / s:10.1f}")
    achieved = flops(seqs) / t_ours
    print(f"\nnucfm: {achieved / 1e9:.1f} GFLOP/s = {100 * achieved / max(peak, peak_after):.0f}% of the matmul peak")
    if cosine is not None:
        print(f"int8 vs fp32 per-residue cosine similarity: mean {cosine.mean():.5f}, min {cosine.min():.5f}")
    if not args.skip_official:
        b1, b16 = rows[n_ours][1], rows[n_ours + 1][1]
        print(f"nucfm fp32 vs official best mode: {min(b1, b16) / t_ours:.2f}x "
              f"(vs batch 1: {b1 / t_ours:.2f}x; vs batch 16: {b16 / t_ours:.2f}x)")
        if cosine is not None:
            print(f"nucfm int8 vs official best mode: {min(b1, b16) / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
