"""Model downloads through huggingface_hub against a local Hub (``HF_ENDPOINT``): pinned revisions,
resume, tokens, sha256, offline mode, one-line errors, hand-placed files.

Every download goes to a local HTTP server on 127.0.0.1 that answers like the Hub's ``resolve``
route; connecting anywhere else fails the test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nucfm.checkpoint import registry
from nucfm.errors import ModelNotFoundError

DATA = bytes(range(256)) * 40  # 10240 bytes
SHA = hashlib.sha256(DATA).hexdigest()
COMMIT = "a" * 40


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes) the way the Hub's ``/REPO/resolve/REV/PATH`` does (HEAD
    with X-Repo-Commit and ETag, GET with Range); behaviour switches per test."""

    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}  # path -> error status to answer
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before closing (once)
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.auth: list[str | None] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, body: bool):
        srv: FileServer = self.server
        srv.requests.append((self.command, self.path, self.headers.get("Range")))
        srv.auth.append(self.headers.get("Authorization"))
        if self.path in srv.status or self.path not in srv.files:
            self.send_response(srv.status.get(self.path, 404))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = srv.files[self.path]
        start = 0
        rng = self.headers.get("Range")
        if body and rng:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not body:
            return
        if self.path in srv.cut_after:
            self.wfile.write(data[start : start + srv.cut_after.pop(self.path)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data[start:])

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)


@pytest.fixture
def server(monkeypatch):
    srv = FileServer()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", srv.base)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh NUCFM_HOME and Hub cache, no offline settings or token from the caller, no real network."""
    monkeypatch.setenv("NUCFM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for var in ("NUCFM_OFFLINE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    # huggingface_hub reads HF_HUB_OFFLINE once, at import (the suite's conftest sets it): follow the test's env
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    real = socket.create_connection

    def local_only(address, *args, **kw):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {address}")
        return real(address, *args, **kw)

    monkeypatch.setattr(socket, "create_connection", local_only)
    # huggingface_hub retries 5xx answers and refused connections with backoff (1+2+4+8+8 s): keep the
    # retries, not the waiting
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda s: None)


def add_model(monkeypatch, name, sha=None, revision="main", path="w.bin"):
    """A registered model of one file ``org/repo:PATH``; returns its URL path on the local Hub."""
    f = registry.RemoteFile("org/repo", path, revision, sha)
    entry = registry.ModelEntry(name, "rna", "test", files=(f,), entry_point=f.filename)
    monkeypatch.setitem(registry.MODELS, name, entry)
    return f"/org/repo/resolve/{revision}/{path}"


def test_every_remote_model_is_on_the_hub_and_rnafm_is_pinned():
    remote = [e for e in registry.MODELS.values() if not e.shipped]
    assert {"rna-fm", "mrna-fm", "rna-fm-ss-bprna", "rna-fm-ss-pdb", "gpn-brassicales"} <= {e.name for e in remote}
    for e in remote:
        assert e.files and all("/" in f.repo and f.revision for f in e.files)
        assert all(f.sha256 is None or len(bytes.fromhex(f.sha256)) == 32 for f in e.files)
        assert e.entry_point is None or e.entry_point in {f.filename for f in e.files}
    for name in ("rna-fm", "mrna-fm", "rna-fm-ss-bprna", "rna-fm-ss-pdb"):
        f = registry.MODELS[name].files[0]
        assert f.repo == "cuhkaih/rnafm" and f.sha256
        assert len(f.revision) == 40 or name == "rna-fm-ss-pdb"  # no source names a commit for the PDB head
    assert registry.MODELS["mrna-fm"].files[0].url("https://huggingface.co") == (
        "https://huggingface.co/cuhkaih/rnafm/resolve/91d4a46d28d8054a7b429955e8fc0c253ba0afd6/mRNA-FM_pretrained.pth")
    assert registry.MODELS["mrna-fm"].kind == "codon"
    assert registry.MODELS["rna-fm-ss-pdb"].kind == registry.MODELS["rna-fm-ss-bprna"].kind == "ss"
    assert registry.MODELS["rna-fm-ss-pdb"].threshold == 0.3399
    assert registry.MODELS["rna-fm-ss-bprna"].threshold == 0.4773


def test_download_at_the_pinned_revision_into_the_hub_cache(server, monkeypatch, tmp_path):
    url = add_model(monkeypatch, "m", SHA, revision=COMMIT, path="sub/w.bin")
    server.files[url] = DATA
    got = registry.resolve("m", download=True)
    assert got.read_bytes() == DATA and got.name == "w.bin"
    assert str(got).startswith(str(tmp_path / "hub" / "models--org--repo" / "snapshots" / COMMIT))
    assert {p for _, p, _ in server.requests} == {url}
    assert registry.is_cached("m")
    n = len(server.requests)
    assert registry.resolve("m", download=True) == got and len(server.requests) == n  # no request once cached


def test_directory_models_resolve_to_the_snapshot(server, monkeypatch):
    files = registry.hf_files("org/gpn", "config.json", "model.safetensors")
    monkeypatch.setitem(registry.MODELS, "d", registry.ModelEntry("d", "dna", "t", files=files))
    for f in files:
        server.files[f"/org/gpn/resolve/main/{f.path}"] = f.path.encode()
    d = registry.resolve("d", download=True)
    assert (d / "config.json").read_bytes() == b"config.json" and (d / "model.safetensors").exists()
    # a directory placed by hand is used only when complete: one directory, never half of each
    registry.placed_dir("d").mkdir(parents=True, exist_ok=True)  # holds the sha256 records already
    (registry.placed_dir("d") / "config.json").write_bytes(b"config.json")
    assert registry.resolve("d", download=True) == d
    (registry.placed_dir("d") / "model.safetensors").write_bytes(b"model.safetensors")
    assert registry.resolve("d", download=True) == registry.placed_dir("d")


def test_interrupted_transfer_resumes_with_range(server, monkeypatch):
    url = add_model(monkeypatch, "m", SHA)
    server.files[url] = DATA
    server.cut_after[url] = 4000
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 1000)  # the 4000 bytes reach the disk
    assert registry.resolve("m", download=True).read_bytes() == DATA
    assert ("GET", url, "bytes=4000-") in server.requests


def test_token_is_sent(server, monkeypatch):
    url = add_model(monkeypatch, "m")
    server.files[url] = DATA
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    registry.resolve("m", download=True)
    assert set(server.auth) == {"Bearer hf_secret"}


def test_sha256_mismatch_deletes_the_download(server, monkeypatch):
    url = add_model(monkeypatch, "m", "0" * 64)
    server.files[url] = DATA
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("m", download=True)
    msg = str(e.value)
    assert "w.bin" in msg and f"expected {'0' * 64}, got {SHA}" in msg and "\n" not in msg
    assert not registry.is_cached("m")


def test_sha256_recorded_on_first_use_and_trusted_later(server, monkeypatch):
    url = add_model(monkeypatch, "m")  # registry does not know the sha
    server.files[url] = DATA
    got = registry.resolve("m", download=True)
    record = registry.placed_dir("m") / "w.bin.sha256"
    assert record.read_text() == f"{SHA}  {got.resolve()}\n"

    def no_hashing(path):
        raise AssertionError("a cached file with a fresh record is not hashed again")

    with monkeypatch.context() as m:
        m.setattr(registry, "sha256sum", no_hashing)
        assert registry.resolve("m", download=True) == got
    # a file changed after its record was written is caught
    blob = got.resolve()
    blob.chmod(0o644)
    blob.write_bytes(b"truncated")
    t = record.stat().st_mtime_ns
    os.utime(blob, ns=(t + 10**9, t + 10**9))
    with pytest.raises(ModelNotFoundError, match="changed since it was first used"):
        registry.resolve("m", download=True)


def test_placed_file_is_used_offline_and_checked_against_the_registry_sha(monkeypatch):
    add_model(monkeypatch, "m", SHA)
    dest = registry.placed_dir("m") / "w.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not the weights")
    with pytest.raises(ModelNotFoundError, match="registry expects"):
        registry.resolve("m", download=False)
    assert dest.exists()  # a hand-placed file is never deleted
    dest.write_bytes(DATA)
    assert registry.resolve("m", download=False) == dest
    assert (registry.placed_dir("m") / "w.bin.sha256").read_text().split()[0] == SHA


@pytest.mark.parametrize("var", ["NUCFM_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_makes_no_request_and_says_where_to_put_the_file(server, monkeypatch, var):
    url = add_model(monkeypatch, "m")
    server.files[url] = DATA
    monkeypatch.setenv(var, "1")
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("m")
    msg = str(e.value)
    assert server.requests == []
    assert f"{server.base}{url}" in msg and str(registry.placed_dir("m") / "w.bin") in msg and "\n" not in msg


def test_offline_uses_the_hub_cache(server, monkeypatch):
    url = add_model(monkeypatch, "m", SHA)
    server.files[url] = DATA
    got = registry.resolve("m", download=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(server.requests)
    assert registry.resolve("m") == got and len(server.requests) == n


@pytest.mark.parametrize("status", [403, 404, 500])
def test_server_error_is_one_line(server, monkeypatch, status):
    url = add_model(monkeypatch, "m")
    server.status[url] = status
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("m", download=True)
    msg = str(e.value)
    assert "\n" not in msg and "could not download" in msg and f"HTTP {status}" in msg
    assert f"download {server.base}{url} and put it at" in msg


def test_unreachable_endpoint_is_one_line(monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{dead}")
    add_model(monkeypatch, "m")
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("m", download=True)
    assert "\n" not in str(e.value) and "could not download" in str(e.value)


def test_cli_prints_a_download_failure_on_one_line(server, monkeypatch, capsys, tmp_path):
    from nucfm.cli import main

    server.status[add_model(monkeypatch, "m")] = 403
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a\nACGU\n")
    assert main(["embed", "-i", str(fasta), "-o", str(tmp_path / "e.h5"), "--model", "m"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nucfm: error: model 'm' is not in the cache") and "\n" not in err


def _official_ss_pth() -> bytes:
    """An official-layout RNA-FM SS head (tiny, 16-dim embeddings) as ``torch.save`` bytes."""
    import torch

    from nucfm.checkpoint.structure import RNAFM_SS_PREFIX
    from nucfm.models.heads import PairHead, PairHeadConfig

    torch.manual_seed(0)
    head = PairHead(PairHeadConfig(embed_dim=16, reduction=4, channels=4, blocks=1))
    back = {"pre_reduction.": "pre_reduction.", "first.": "proj.first.0.", "blocks.": "proj.resnet.",
            "final.": "proj.final."}
    state = {}
    for k, v in head.state_dict().items():
        old = next(o for n, o in back.items() if k.startswith(n))
        state[RNAFM_SS_PREFIX + old + k.split(".", 1)[1]] = v
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.mark.parametrize("name,threshold", [("rna-fm-ss-pdb", 0.3399), ("rna-fm-ss-bprna", 0.4773)])
def test_official_ss_heads_by_name_use_their_threshold(server, monkeypatch, name, threshold):
    from nucfm.checkpoint.structure import load_structure_model
    from nucfm.models.config import TransformerConfig
    from nucfm.models.transformer import Transformer

    data = _official_ss_pth()
    entry = registry.MODELS[name]
    f = entry.files[0]
    server.files[f"/{f.repo}/resolve/{f.revision}/{f.path}"] = data
    local = dataclasses.replace(f, sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(registry.MODELS, name, dataclasses.replace(entry, files=(local,)))
    lm = Transformer(TransformerConfig(num_layers=1, hidden_size=16, num_heads=2, ffn_size=32, max_len=30)).eval()
    pred = load_structure_model(name, lm=lm)
    assert pred.decode_options.threshold == threshold
    assert pred.predict_probs(["GGGAAACCC"])[0].shape == (9, 9)
