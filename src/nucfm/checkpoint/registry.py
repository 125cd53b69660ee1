"""Registered model names: shipped with nucfm, or downloaded once into ``$NUCFM_HOME``.

``nucfm models`` prints this table. A shipped model lives in the package (``nucfm/weights/NAME``)
and works offline. A downloadable one is fetched on first use into
``$NUCFM_HOME/NAME/`` (default ``~/.cache/nucfm``), checked against its sha256 when the
registry knows it; without internet the error says which file to put where.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from nucfm.errors import ModelNotFoundError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class RemoteFile:
    filename: str
    url: str
    sha256: str | None = None  # None: not published by the authors; printed after download


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "rna" or "dna"
    description: str
    files: tuple[RemoteFile, ...] = ()  # empty for shipped models
    entry_point: str | None = None  # file inside the directory to load (e.g. the .pth)

    @property
    def shipped(self) -> bool:
        return not self.files


MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    MODELS[entry.name] = entry
    return entry


register(ModelEntry(
    name="rna-fm",
    kind="rna",
    description="official RNA-FM (12 layers, 640 dim, 99.5M parameters; Chen et al. 2022)",
    files=(RemoteFile("RNA-FM_pretrained.pth",
                      "https://proj.cse.cuhk.edu.hk/rnafm/api/download?filename=RNA-FM_pretrained.pth"),),
    entry_point="RNA-FM_pretrained.pth",
))
register(ModelEntry(
    name="gpn-brassicales",
    kind="dna",
    description="official GPN (25-layer dilated CNN, 66M parameters; Benegas et al. 2023)",
    files=(
        RemoteFile("config.json", "https://huggingface.co/songlab/gpn-brassicales/resolve/main/config.json"),
        RemoteFile("model.safetensors",
                   "https://huggingface.co/songlab/gpn-brassicales/resolve/main/model.safetensors"),
    ),
))

# Defaults used by commands when --model is not given; set by the shipped models below.
DEFAULTS: dict[str, str] = {}


def _register_shipped() -> None:
    """Every directory under ``nucfm/weights`` is a shipped model; its config names its kind."""
    import json

    if not SHIPPED_DIR.is_dir():
        return
    for d in sorted(SHIPPED_DIR.iterdir()):
        if not (d / "config.json").exists():
            continue
        meta = json.loads((d / "config.json").read_text()).get("metadata", {})
        kind = meta.get("kind", "rna")
        register(ModelEntry(name=d.name, kind=kind, description=meta.get("description", "shipped with nucfm")))
        if meta.get("default"):
            DEFAULTS[kind] = d.name


_register_shipped()


def home() -> Path:
    return Path(os.environ.get("NUCFM_HOME", Path.home() / ".cache" / "nucfm")).expanduser()


def default_model(kind: str) -> str:
    """The name of the default model for ``kind`` ("rna" or "dna")."""
    try:
        return DEFAULTS[kind]
    except KeyError:
        raise ModelNotFoundError(f"no default {kind.upper()} model is shipped with this nucfm; "
                                 "pass --model NAME_OR_PATH (see `nucfm models`)") from None


def sha256sum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(f: RemoteFile, dest: Path) -> None:
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        try:
            with urllib.request.urlopen(f.url, timeout=60) as r:
                total = int(r.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f.filename) as bar:
                    while block := r.read(1 << 20):
                        tmp.write(block)
                        bar.update(len(block))
        except Exception:
            os.unlink(tmp.name)
            raise
    digest = sha256sum(Path(tmp.name))
    if f.sha256 is not None and digest != f.sha256:
        os.unlink(tmp.name)
        raise ModelNotFoundError(f"{f.filename}: sha256 {digest} does not match the registry's {f.sha256}")
    shutil.move(tmp.name, dest)
    (dest.parent / (f.filename + ".sha256")).write_text(digest + "\n")


def resolve(name: str, download: bool | None = None) -> Path:
    """Local path of a registered model, downloading it when allowed."""
    entry = MODELS[name]
    if entry.shipped:
        return SHIPPED_DIR / name
    target = home() / name
    missing = [f for f in entry.files if not (target / f.filename).exists()]
    if missing:
        if download is None:
            download = os.environ.get("NUCFM_OFFLINE", "0") in ("", "0")
        where = "; ".join(f"{f.url} -> {target / f.filename}" for f in missing)
        if not download:
            raise ModelNotFoundError(f"model {name!r} is not in the cache; download {where} (or pass the file's path)")
        for f in missing:
            try:
                _download(f, target / f.filename)
            except ModelNotFoundError:
                raise
            except Exception as e:
                raise ModelNotFoundError(
                    f"could not download model {name!r} ({type(e).__name__}: {e}); on a machine with "
                    f"internet fetch {where}, or pass the file's path"
                ) from e
    return target / entry.entry_point if entry.entry_point else target
