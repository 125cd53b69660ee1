"""Registered model names: shipped with nucfm, or downloaded once from the Hugging Face Hub.

``nucfm models`` prints this table. A shipped model lives in the package (``nucfm/weights/NAME``)
and works offline. A downloadable one names files of a Hugging Face repository, fetched on first use
by ``huggingface_hub`` (:func:`huggingface_hub.hf_hub_download`), so everything the Hub's own
client does holds here too:

* files go to the Hub's shared cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
  ``~/.cache/huggingface/hub``), where transformers and every other Hub user find them;
* a revision is pinned by commit where an independent source names the file at that commit,
  else ``main``; ``HF_ENDPOINT`` points at a mirror of the Hub; ``HF_TOKEN`` (or
  ``hf auth login``) is sent for gated or private repositories; interrupted transfers resume;
* ``NUCFM_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: no network; a missing file raises
  :class:`~nucfm.errors.ModelNotFoundError` (one line) saying what to fetch and where to put it.

Files placed by hand in ``$NUCFM_HOME/NAME/`` (default ``~/.cache/nucfm``; what nucfm < 0.3 used
as its cache) are used as they are, without the network. Whatever the source, a file's sha256 is
checked against the registry when known; either way it is recorded in
``$NUCFM_HOME/NAME/FILE.sha256`` (``sha256sum`` format) on first use and compared again only when
the file is newer than the record.

Adding a model is one :func:`register` call::

    register(ModelEntry("gpn-x", "dna", "what it is", files=hf_files("org/gpn-x", "config.json",
                                                                     "model.safetensors")))
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nucfm.errors import ModelNotFoundError
from nucfm.paths import home

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
# Seconds to wait for the Hub to answer a file's metadata request (huggingface_hub's etag_timeout).
TIMEOUT_S = 30.0
# Pair-probability thresholds published with the official RNA-FM SS heads (RNA-FM repository configs).
RNAFM_SS_THRESHOLDS = {"bprna": 0.4773, "pdb": 0.3399}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a downloadable model: ``path`` inside the Hugging Face repository ``repo`` at
    ``revision`` (a commit where known), and its sha256 where an independent source gives one."""

    repo: str
    path: str
    revision: str = "main"
    sha256: str | None = None  # None: not known; recorded on first use instead

    @property
    def filename(self) -> str:
        """The file's name (its place in ``$NUCFM_HOME/NAME/`` for a hand-placed copy)."""
        return PurePosixPath(self.path).name

    def url(self, endpoint: str | None = None) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo, self.path, revision=self.revision, endpoint=endpoint or hf_endpoint())


def hf_files(repo: str, *paths: str, revision: str = "main", sha256: dict[str, str] | None = None
             ) -> tuple[RemoteFile, ...]:
    """The files ``paths`` of one Hugging Face repository, with their sha256 where known."""
    return tuple(RemoteFile(repo, p, revision, (sha256 or {}).get(p)) for p in paths)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "rna", "dna", "codon", "ss", ...
    description: str
    files: tuple[RemoteFile, ...] = ()  # empty for shipped models
    entry_point: str | None = None  # file name to load (e.g. the .pth); None: the directory
    threshold: float | None = None  # kind "ss": the pair-probability threshold published with the head

    @property
    def shipped(self) -> bool:
        return not self.files


MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    MODELS[entry.name] = entry
    return entry


# Sources of the revisions and sha256s below (no checksum is published by the authors themselves):
# the RNA-FM authors moved their weights to https://huggingface.co/cuhkaih/rnafm (ml4bio/RNA-FM
# issue #26); their CUHK server, the only source in rna-fm 0.2.2, answers 403 (issues #26, #28), so
# it is no longer tried. RNA-FM, mRNA-FM and the bpRNA SS head: the commit and sha256s pinned for
# these files by an independent user (the MultiMolecule RNA-FM fixture script, HF revision
# 91d4a46d; two download scripts agree on RNA-FM_pretrained.pth). The PDB SS head: the sha256 two
# download scripts pin for it at ``main`` (no source names a commit for it).
RNAFM_REPO, RNAFM_REVISION = "cuhkaih/rnafm", "91d4a46d28d8054a7b429955e8fc0c253ba0afd6"


def _rnafm_file(path: str, sha256: str, revision: str = RNAFM_REVISION) -> tuple[RemoteFile, ...]:
    return hf_files(RNAFM_REPO, path, revision=revision, sha256={path: sha256})


register(ModelEntry(
    name="rna-fm",
    kind="rna",
    description="official RNA-FM (12 layers, 640 dim, 99.5M parameters; Chen et al. 2022)",
    files=_rnafm_file("RNA-FM_pretrained.pth", "5b5d7d87b37c291ef42c140ef9edf7aea29f255fa2a4fd435f776c52e93d5e99"),
    entry_point="RNA-FM_pretrained.pth",
))
register(ModelEntry(
    name="mrna-fm",
    kind="codon",
    description="official mRNA-FM over codons of coding sequences (12 layers, 1280 dim; Chen et al. 2022)",
    files=_rnafm_file("mRNA-FM_pretrained.pth", "413324520d35f00bf5419a85033b18e11eb57bc1356a752660f8d75d3ef7624f"),
    entry_point="mRNA-FM_pretrained.pth",
))
register(ModelEntry(
    name="rna-fm-ss-bprna",
    kind="ss",
    description="official RNA-FM secondary-structure head trained on bpRNA (threshold 0.4773; LM rna-fm)",
    files=_rnafm_file("SS/RNA-FM-ResNet_bpRNA.pth", "4ba2cde6b6ad75fb1c742cd5a7f40d4d0d4bcd63a329ff98347776e7f84630e6"),
    entry_point="RNA-FM-ResNet_bpRNA.pth",
    threshold=RNAFM_SS_THRESHOLDS["bprna"],
))
register(ModelEntry(
    name="rna-fm-ss-pdb",
    kind="ss",
    description="official RNA-FM secondary-structure head trained on PDB (threshold 0.3399; LM rna-fm)",
    files=_rnafm_file("SS/RNA-FM-ResNet_PDB-All.pth",
                      "bc9df2111ae6ba95b373641ed1ab35ef4fa8b4cd0f8d21065a55450f575fe15d", revision="main"),
    entry_point="RNA-FM-ResNet_PDB-All.pth",
    threshold=RNAFM_SS_THRESHOLDS["pdb"],
))
register(ModelEntry(
    name="gpn-brassicales",
    kind="dna",
    description="official GPN (25-layer dilated CNN, 66M parameters; Benegas et al. 2023)",
    files=hf_files("songlab/gpn-brassicales", "config.json", "model.safetensors"),  # no pinned commit known
))
register(ModelEntry(
    name="gpn-animal-promoter",
    kind="dna",
    description="official GPN for animal promoters (ByteNet encoder, GPN format; Benegas et al. 2025, TraitGym)",
    files=hf_files("songlab/gpn-animal-promoter", "config.json", "model.safetensors"),  # no pinned commit known
))
register(ModelEntry(
    name="gpn-msa-sapiens",
    kind="dna",
    description="official GPN-MSA for human (RoFormer over hg38 + 89 aligned vertebrates; Benegas et al. 2025); "
                "needs --msa (the 89.zarr alignment)",
    files=hf_files("songlab/gpn-msa-sapiens", "config.json", "model.safetensors"),  # no pinned commit known
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


def offline() -> bool:
    """``NUCFM_OFFLINE`` or ``HF_HUB_OFFLINE`` set to anything but empty/0/false/no/off."""
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no", "off")
               for v in ("NUCFM_OFFLINE", "HF_HUB_OFFLINE"))


def hf_endpoint() -> str | None:
    """``$HF_ENDPOINT`` now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None


def hf_cache_dir() -> str | None:
    """``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, read now; None: huggingface_hub's default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None


def placed_dir(name: str) -> Path:
    """Where hand-placed files of a downloadable model are looked for: ``$NUCFM_HOME/NAME``."""
    return home() / name


def is_cached(name: str) -> bool:
    """True when every file of a model is on this machine (shipped: always)."""
    entry = MODELS[name]
    return entry.shipped or all(_local(entry, f) is not None for f in entry.files)


def resolve(name: str, download: bool | None = None) -> Path:
    """Local path of a registered model (its ``entry_point`` file, or its directory), downloading
    missing files when allowed.

    ``download`` None means: unless :func:`offline`. Raises :class:`ModelNotFoundError` (one-line
    message naming each missing file's URL and where to put it) when a file is missing and cannot be
    fetched, or when a file's sha256 is wrong.
    """
    entry = MODELS[name]
    if entry.shipped:
        return SHIPPED_DIR / name
    if download is None:
        download = not offline()
    paths = [_local(entry, f) or _download(entry, f, download) for f in entry.files]
    for f, p in zip(entry.files, paths):
        _verify(entry, f, p)
    if entry.entry_point:
        return next(p for f, p in zip(entry.files, paths) if f.filename == entry.entry_point)
    return paths[0].parent


# ---- internals ----------------------------------------------------------------------------------
def _local(entry: ModelEntry, f: RemoteFile) -> Path | None:
    """A hand-placed copy (when every file of the model is placed, so a directory model is one
    directory), else the Hub cache's copy at the pinned revision, else None."""
    if all((placed_dir(entry.name) / g.filename).exists() for g in entry.files):
        return placed_dir(entry.name) / f.filename
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(f.repo, f.path, cache_dir=hf_cache_dir(), revision=f.revision)
    return Path(hit) if isinstance(hit, str) else None


def _download(entry: ModelEntry, f: RemoteFile, download: bool) -> Path:
    if not download:
        why = "NUCFM_OFFLINE/HF_HUB_OFFLINE is set" if offline() else "downloading is off"
        raise ModelNotFoundError(_missing_message(entry, f"{why}, so nothing was downloaded"))
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(f.repo, f.path, revision=f.revision, cache_dir=hf_cache_dir(),
                                    endpoint=hf_endpoint(), etag_timeout=TIMEOUT_S))
    except Exception as e:  # noqa: BLE001 - any failure of the client becomes the one-line message
        raise ModelNotFoundError(_missing_message(entry, f"nucfm could not download it ({_reason(e)})")) from e


def _missing_message(entry: ModelEntry, why: str) -> str:
    missing = [f for f in entry.files if _local(entry, f) is None]
    where = ", ".join(f"{f.url()} and put it at {placed_dir(entry.name) / f.filename}" for f in missing)
    what = "the file's path" if entry.entry_point else "the directory's path"
    return (f"model {entry.name!r} is not in the cache and {why}; on a machine with internet download "
            f"{where}, or pass {what} with --model")


def _reason(e: BaseException) -> str:
    """A short one-line reason for a failed download: the first HTTP status in the chain of causes,
    else the innermost cause."""
    chain = [e]
    while (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None and nxt not in chain:
        chain.append(nxt)
    for x in chain:
        status = getattr(getattr(x, "response", None), "status_code", None)
        if status:
            return f"HTTP {status}"
    inner = chain[-1]
    text = " ".join(str(inner).split()) or type(inner).__name__
    return f"{type(inner).__name__}: {text[:200]}"


def _record(entry: ModelEntry, f: RemoteFile) -> Path:
    return placed_dir(entry.name) / f"{f.filename}.sha256"


def _write_record(record: Path, path: Path, digest: str) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{digest}  {path.resolve()}\n")  # sha256sum format: `sha256sum -c` reads it


def _verify(entry: ModelEntry, f: RemoteFile, path: Path) -> None:
    """Check ``path`` against the registry's sha256, or against the one recorded on first use.

    Cheap when the record names this same file and is at least as new as it (it was written after
    the hash was checked); otherwise the file is hashed once and the record rewritten. A wrong file
    in the Hub cache is deleted (the next run downloads it again); a hand-placed one is left alone.
    """
    record = _record(entry, f)
    real = path.resolve()
    recorded = None
    if record.exists():
        fields = record.read_text().split()
        recorded = fields[0] if fields else None
        same = len(fields) > 1 and fields[1] == str(real)
        if same and record.stat().st_mtime_ns >= real.stat().st_mtime_ns and f.sha256 in (None, recorded):
            return
        if not same:
            recorded = None  # another copy (a new revision, or a hand-placed file): hash it afresh
    digest = sha256sum(real)
    if f.sha256 is not None and digest != f.sha256:
        if path.parent != placed_dir(entry.name):
            real.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            raise ModelNotFoundError(f"sha256 of {f.filename} downloaded from {f.url()} does not match the registry: "
                                     f"expected {f.sha256}, got {digest}; the download was deleted, run again to retry")
        raise ModelNotFoundError(f"{path} has sha256 {digest} but the registry expects {f.sha256} for "
                                 f"{entry.name!r}; replace it with {f.url()} or delete it to download it again")
    if f.sha256 is None and recorded is not None and digest != recorded:
        raise ModelNotFoundError(f"{path} changed since it was first used (sha256 {digest}, recorded {recorded}); "
                                 f"delete it to download it again, or delete {record} to accept it")
    try:
        _write_record(record, path, digest)
    except OSError:  # a read-only cache: the file is right, it is just hashed again next time
        pass
