"""Prepare a run config's training data here and pack it to travel to a GPU machine that has no
``../shared`` (issue 26): the token arrays of :func:`nucfm.train.pretrain.prepare_data` written to
``DEST`` (the config's ``data.prepared``), each ``*.bin`` gzip-compressed beside it. On the GPU
machine ``scripts/device_run.sh`` unpacks them (``gunzip -k DEST/*.bin.gz``) and the run reads them
memory-mapped with ``data.prepared=DEST``.

    python scripts/pack_prepared.py configs/gpu/dna.yaml .gpu/dna
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nucfm.train.config import load_config
from nucfm.train.pretrain import prepare_data

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("config")
p.add_argument("dest")
a = p.parse_args()
cfg = load_config(a.config, [f"data.prepared={a.dest}"])
summary = prepare_data(cfg, Path(a.dest))
for b in sorted(Path(a.dest).glob("*.bin")):
    with open(b, "rb") as src, gzip.open(str(b) + ".gz", "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 24)
    b.unlink()
for f in sorted(Path(a.dest).iterdir()):
    print(f"{f.stat().st_size / 1e6:8.2f} MB  {f}")
