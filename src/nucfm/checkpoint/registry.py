"""Registered model names: shipped with nucfm, or downloaded once into ``$NUCFM_HOME``.

``nucfm models`` prints this table. A shipped model lives in the package (``nucfm/weights/NAME``)
and works offline. A downloadable one is fetched on first use into ``$NUCFM_HOME/NAME/``
(default ``~/.cache/nucfm``):

* each file lists mirrors tried in order (``NUCFM_MIRROR``, when set, is tried first as
  ``$NUCFM_MIRROR/NAME/FILE``; ``HF_ENDPOINT`` replaces ``https://huggingface.co``);
* bytes go to ``FILE.part``; an interrupted download is resumed with an HTTP ``Range`` request
  from the mirror that wrote the part (recorded in ``FILE.part.url``);
* the sha256 is checked against the registry when it is known; either way it is recorded in
  ``FILE.sha256`` (``sha256sum`` format). A file placed by hand is hashed once, on the first load
  after it appears; later loads only compare modification times;
* ``NUCFM_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: no network; a missing file raises
  :class:`~nucfm.errors.ModelNotFoundError` saying which URL to put at which path.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nucfm.errors import ModelNotFoundError
from nucfm.paths import home

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
HF = "https://huggingface.co"
# Seconds to wait for a connection, and for each read once streaming: a server that stops sending
# mid-file fails after this long instead of hanging the run.
TIMEOUT_S = 30.0
# Pair-probability thresholds published with the official RNA-FM SS heads (RNA-FM repository configs).
RNAFM_SS_THRESHOLDS = {"bprna": 0.4773, "pdb": 0.3399}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a downloadable model: its name in ``$NUCFM_HOME/NAME/`` and its mirrors, in order.

    ``urls`` may be given as one string (kept for callers of the single-URL registry).
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None  # None: not known; recorded after the first download instead

    def __post_init__(self):
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        if not urls:
            raise ValueError(f"{self.filename}: a remote file needs at least one URL")
        object.__setattr__(self, "urls", urls)

    @property
    def url(self) -> str:
        """The first (preferred) mirror."""
        return self.urls[0]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "rna", "dna" or "ss"
    description: str
    files: tuple[RemoteFile, ...] = ()  # empty for shipped models
    entry_point: str | None = None  # file inside the directory to load (e.g. the .pth)
    threshold: float | None = None  # kind "ss": the pair-probability threshold published with the head

    @property
    def shipped(self) -> bool:
        return not self.files


MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    MODELS[entry.name] = entry
    return entry


# Sources of the names and sha256s below (no checksum is published by the authors themselves):
# the RNA-FM authors moved their weights to https://huggingface.co/cuhkaih/rnafm (ml4bio/RNA-FM
# issue #26); the CUHK server, the only source of rna-fm 0.2.2, answers 403 (issues #26, #28).
# The sha256s are those pinned for the same HF paths by independent users of the files (the
# MultiMolecule RNA-FM fixture script at HF revision 91d4a46d, and two download scripts).
_RNAFM_HF = f"{HF}/cuhkaih/rnafm/resolve/main"
_CUHK = "https://proj.cse.cuhk.edu.hk/rnafm/api/download?filename="

register(ModelEntry(
    name="rna-fm",
    kind="rna",
    description="official RNA-FM (12 layers, 640 dim, 99.5M parameters; Chen et al. 2022)",
    files=(RemoteFile("RNA-FM_pretrained.pth",
                      (f"{_RNAFM_HF}/RNA-FM_pretrained.pth", f"{_CUHK}RNA-FM_pretrained.pth"),
                      "5b5d7d87b37c291ef42c140ef9edf7aea29f255fa2a4fd435f776c52e93d5e99"),),
    entry_point="RNA-FM_pretrained.pth",
))
register(ModelEntry(
    name="rna-fm-ss-bprna",
    kind="ss",
    description="official RNA-FM secondary-structure head trained on bpRNA (threshold 0.4773; LM rna-fm)",
    files=(RemoteFile("RNA-FM-ResNet_bpRNA.pth", (f"{_RNAFM_HF}/SS/RNA-FM-ResNet_bpRNA.pth",),
                      "4ba2cde6b6ad75fb1c742cd5a7f40d4d0d4bcd63a329ff98347776e7f84630e6"),),
    entry_point="RNA-FM-ResNet_bpRNA.pth",
    threshold=RNAFM_SS_THRESHOLDS["bprna"],
))
register(ModelEntry(
    name="rna-fm-ss-pdb",
    kind="ss",
    description="official RNA-FM secondary-structure head trained on PDB (threshold 0.3399; LM rna-fm)",
    files=(RemoteFile("RNA-FM-ResNet_PDB-All.pth",
                      (f"{_RNAFM_HF}/SS/RNA-FM-ResNet_PDB-All.pth", f"{_CUHK}RNA-FM-ResNet_PDB-All.pth"),
                      "bc9df2111ae6ba95b373641ed1ab35ef4fa8b4cd0f8d21065a55450f575fe15d"),),
    entry_point="RNA-FM-ResNet_PDB-All.pth",
    threshold=RNAFM_SS_THRESHOLDS["pdb"],
))
register(ModelEntry(
    name="gpn-brassicales",
    kind="dna",
    description="official GPN (25-layer dilated CNN, 66M parameters; Benegas et al. 2023)",
    files=(
        RemoteFile("config.json", f"{HF}/songlab/gpn-brassicales/resolve/main/config.json"),
        RemoteFile("model.safetensors", f"{HF}/songlab/gpn-brassicales/resolve/main/model.safetensors"),
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


def is_cached(name: str) -> bool:
    """True when every file of a downloadable model is in ``$NUCFM_HOME`` (shipped: always)."""
    entry = MODELS[name]
    return entry.shipped or all((home() / name / f.filename).exists() for f in entry.files)


def offline() -> bool:
    """``NUCFM_OFFLINE`` or ``HF_HUB_OFFLINE`` set to anything but empty/0/false/no/off."""
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no", "off")
               for v in ("NUCFM_OFFLINE", "HF_HUB_OFFLINE"))


def mirrors(name: str, f: RemoteFile) -> list[str]:
    """URLs to try for ``f``, in order: ``$NUCFM_MIRROR/NAME/FILE`` first when set, then the
    registry's, with ``https://huggingface.co`` replaced by ``$HF_ENDPOINT`` when set."""
    mirror = os.environ.get("NUCFM_MIRROR", "").strip().rstrip("/")
    return ([f"{mirror}/{name}/{f.filename}"] if mirror else []) + [_hf_endpoint(u) for u in f.urls]


def _hf_endpoint(url: str) -> str:
    endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/")
    return endpoint + url[len(HF):] if endpoint and url.startswith(HF + "/") else url


def resolve(name: str, download: bool | None = None) -> Path:
    """Local path of a registered model, downloading missing files when allowed.

    ``download`` None means: unless :func:`offline`. Raises :class:`ModelNotFoundError` (one-line
    message naming each missing file's URL and destination) when a file is missing and cannot be
    fetched, or when a file's sha256 is wrong.
    """
    entry = MODELS[name]
    if entry.shipped:
        return SHIPPED_DIR / name
    target = home() / name
    if not is_cached(name):
        if download is None:
            download = not offline()
        if not download:
            why = "NUCFM_OFFLINE/HF_HUB_OFFLINE is set" if offline() else "downloading is off"
            raise ModelNotFoundError(_missing_message(entry, target, f"{why}, so nothing was downloaded"))
        try:
            target.mkdir(parents=True, exist_ok=True)
            (target / ".lock").touch()
        except OSError as e:
            raise ModelNotFoundError(f"cannot write the model cache {target} ({_reason(e)}); set NUCFM_HOME "
                                     "to a writable directory") from None
        with _lock(target / ".lock"):
            for f in entry.files:
                dest = target / f.filename
                if dest.exists():  # fetched meanwhile by another process holding the lock
                    continue
                failures = []
                for url in mirrors(name, f):
                    try:
                        _fetch(url, dest, f.sha256)
                        break
                    except ModelNotFoundError:
                        raise
                    except Exception as e:  # noqa: BLE001 - any network failure moves on to the next mirror
                        failures.append(f"{_host(url)}: {_reason(e)}")
                else:
                    raise ModelNotFoundError(_missing_message(entry, target, "nucfm could not download it ("
                                                              + "; ".join(failures) + ")"))
    for f in entry.files:
        _verify(entry, f, target / f.filename)
    return target / entry.entry_point if entry.entry_point else target


# ---- internals ----------------------------------------------------------------------------------
def _missing_message(entry: ModelEntry, target: Path, why: str) -> str:
    missing = [f for f in entry.files if not (target / f.filename).exists()]
    where = ", ".join(f"{_hf_endpoint(f.url)} and put it at {target / f.filename}"
                      for f in missing)
    what = "the file's path" if entry.entry_point else "the directory's path"
    return (f"model {entry.name!r} is not in the cache and {why}; on a machine with internet download "
            f"{where}, or pass {what} with --model")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _reason(e: Exception) -> str:
    """A short one-line reason for a failed download."""
    if isinstance(e, urllib.error.HTTPError):
        text = f"HTTP {e.code} {e.reason}"
    elif isinstance(e, urllib.error.URLError):
        r = e.reason
        text = f"timed out after {TIMEOUT_S:g} s" if isinstance(r, (TimeoutError, socket.timeout)) else str(r)
    elif isinstance(e, (TimeoutError, socket.timeout)):
        text = f"timed out after {TIMEOUT_S:g} s"
    else:
        text = f"{type(e).__name__}: {e}"
    return " ".join(text.split())


@contextmanager
def _lock(path: Path):
    """Exclusive lock on ``path`` so that processes started together download a file once."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; concurrent first downloads may each fetch the file
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fetch(url: str, dest: Path, sha256: str | None) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``; a part written from this same URL (recorded
    in ``dest.part.url``) is resumed with a Range request. Network errors propagate (the caller tries
    the next mirror); a wrong sha256 raises :class:`ModelNotFoundError` after deleting the part."""
    from nucfm.progress import bar as progress_bar

    part = dest.with_name(dest.name + ".part")
    source = dest.with_name(dest.name + ".part.url")
    resumable = part.exists() and source.exists() and source.read_text().strip() == url
    have = part.stat().st_size if resumable else 0
    while True:
        request = urllib.request.Request(url, headers={"User-Agent": "nucfm (python urllib)"})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as e:
            if e.code != 416 or not have:
                raise
            total = _content_range(e.headers.get("Content-Range"))[2]
            e.close()
            if total == have:  # the part was complete already
                break
            have = 0  # the part is longer than the file: start over
            continue
        with response:
            start = 0
            if getattr(response, "status", None) == 206:  # file:// has no status: read as 200
                start = _content_range(response.headers.get("Content-Range"))[0]
                if start != have:
                    raise OSError(f"asked for bytes {have}- but the server sent bytes {start}-")
            else:  # 200: the whole file (a server that ignores Range included)
                source.write_text(url + "\n")
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            total = start + length if length is not None else None
            received = 0
            with open(part, "ab" if start else "wb") as out, \
                    progress_bar(total=total, initial=start, unit="B", unit_scale=True, desc=dest.name) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            if length is not None and received < length:
                raise OSError(f"connection closed after {start + received} of {total} bytes (kept for resume)")
        break
    digest = sha256sum(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        source.unlink(missing_ok=True)
        raise ModelNotFoundError(f"sha256 of {dest.name} downloaded from {url} does not match the registry: "
                                 f"expected {sha256}, got {digest}; the download was deleted, run again to retry")
    os.replace(part, dest)
    source.unlink(missing_ok=True)
    _write_record(dest, digest)  # after the move, so the record is never older than the file


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(start, end, total) of ``bytes START-END/TOTAL`` or ``bytes */TOTAL``; None where absent."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None, None
    return tuple(int(g) if g and g != "*" else None for g in m.groups())


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_record(path: Path, digest: str) -> None:
    _record(path).write_text(f"{digest}  {path.name}\n")  # sha256sum format: `sha256sum -c` reads it


def _verify(entry: ModelEntry, f: RemoteFile, path: Path) -> None:
    """Check ``path`` against the registry's sha256, or against the one recorded at download.

    Cheap when the record is at least as new as the file (it was written after the hash was checked);
    otherwise (a file placed or replaced by hand) the file is hashed once and the record rewritten.
    """
    record = _record(path)
    recorded = None
    if record.exists():
        recorded = (record.read_text().split() or [None])[0]
        fresh = record.stat().st_mtime_ns >= path.stat().st_mtime_ns
        if fresh and f.sha256 in (None, recorded):
            return
    digest = sha256sum(path)
    if f.sha256 is not None and digest != f.sha256:
        raise ModelNotFoundError(f"{path} has sha256 {digest} but the registry expects {f.sha256} for "
                                 f"{entry.name!r}; replace it with {f.url} or delete it to download it again")
    if f.sha256 is None and recorded is not None and digest != recorded:
        raise ModelNotFoundError(f"{path} changed since it was downloaded (sha256 {digest}, recorded {recorded}); "
                                 f"delete it to download it again, or delete {record} to accept it")
    try:
        _write_record(path, digest)
    except OSError:  # a read-only shared cache: the file is right, it is just hashed again next time
        pass
