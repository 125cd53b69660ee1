"""Model downloads: mirrors in order, resume with Range, sha256, HF_ENDPOINT, offline mode.

Every download goes to a local HTTP server on 127.0.0.1; connecting anywhere else fails the test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nucfm.checkpoint import registry
from nucfm.errors import ModelNotFoundError

DATA = bytes(range(256)) * 40  # 10240 bytes
SHA = hashlib.sha256(DATA).hexdigest()


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes) with Range support; behaviour switches per test."""

    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}  # path -> error status to answer
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before closing (once)
        self.stall_after: dict[str, int] = {}  # path -> bytes sent before going silent
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv: FileServer = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if self.path in srv.status:
            self.send_error(srv.status[self.path])
            return
        if self.path not in srv.files:
            self.send_error(404)
            return
        data = srv.files[self.path]
        start = 0
        rng = self.headers.get("Range")
        if rng and not srv.ignore_range:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in srv.cut_after:
            self.wfile.write(body[:srv.cut_after.pop(self.path)])
            self.close_connection = True
            return
        if self.path in srv.stall_after:
            self.wfile.write(body[:srv.stall_after[self.path]])
            self.wfile.flush()
            time.sleep(3)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = FileServer()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh NUCFM_HOME, no mirror or offline settings from the caller, and no real network."""
    monkeypatch.setenv("NUCFM_HOME", str(tmp_path / "home"))
    for var in ("NUCFM_OFFLINE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "NUCFM_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    real = socket.create_connection

    def local_only(address, *args, **kw):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {address}")
        return real(address, *args, **kw)

    monkeypatch.setattr(socket, "create_connection", local_only)
    monkeypatch.setattr(registry, "TIMEOUT_S", 5.0)


def add_model(monkeypatch, name, urls, sha=None):
    entry = registry.ModelEntry(name, "rna", "test", files=(registry.RemoteFile("w.bin", tuple(urls), sha),),
                                entry_point="w.bin")
    monkeypatch.setitem(registry.MODELS, name, entry)
    return registry.home() / name / "w.bin"


def test_every_remote_model_has_mirrors_and_rnafm_starts_on_hugging_face():
    remote = [e for e in registry.MODELS.values() if not e.shipped]
    assert {"rna-fm", "rna-fm-ss-bprna", "rna-fm-ss-pdb", "gpn-brassicales"} <= {e.name for e in remote}
    for e in remote:
        assert e.files and all(f.urls and all(u.startswith("https://") for u in f.urls) for f in e.files)
        assert all(f.sha256 is None or len(bytes.fromhex(f.sha256)) == 32 for f in e.files)
    rnafm = registry.MODELS["rna-fm"].files[0]
    assert rnafm.urls[0] == "https://huggingface.co/cuhkaih/rnafm/resolve/main/RNA-FM_pretrained.pth"
    assert "proj.cse.cuhk.edu.hk" in rnafm.urls[-1]  # the authors' old server, kept as a fallback
    assert registry.MODELS["rna-fm-ss-pdb"].kind == registry.MODELS["rna-fm-ss-bprna"].kind == "ss"
    assert registry.MODELS["rna-fm-ss-pdb"].threshold == 0.3399
    assert registry.MODELS["rna-fm-ss-bprna"].threshold == 0.4773


def test_remote_file_keeps_the_single_url_form():
    f = registry.RemoteFile("w.bin", "https://example.org/w.bin")
    assert f.urls == ("https://example.org/w.bin",) and f.url == "https://example.org/w.bin"


def test_first_mirror_403_then_second_mirror(server, monkeypatch):
    server.files["/b/w.bin"] = DATA
    server.status["/a/w.bin"] = 403
    dest = add_model(monkeypatch, "m", [f"{server.base}/a/w.bin", f"{server.base}/b/w.bin"], SHA)
    assert registry.resolve("m", download=True) == dest
    assert dest.read_bytes() == DATA
    assert [p for p, _ in server.requests] == ["/a/w.bin", "/b/w.bin"]
    assert not dest.with_name("w.bin.part").exists()


def test_interrupted_download_resumes_with_range(server, monkeypatch):
    server.files["/w.bin"] = DATA
    server.cut_after["/w.bin"] = 4000
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin"], SHA)
    with pytest.raises(ModelNotFoundError, match="connection closed after 4000 of 10240 bytes"):
        registry.resolve("m", download=True)
    assert dest.with_name("w.bin.part").stat().st_size == 4000 and not dest.exists()
    assert registry.resolve("m", download=True) == dest
    assert server.requests[-1] == ("/w.bin", "bytes=4000-")
    assert dest.read_bytes() == DATA
    assert not dest.with_name("w.bin.part").exists() and not dest.with_name("w.bin.part.url").exists()


def test_server_ignoring_range_starts_over(server, monkeypatch):
    server.files["/w.bin"] = DATA
    server.cut_after["/w.bin"] = 3000
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin"])  # no sha: bytes must be right by themselves
    with pytest.raises(ModelNotFoundError):
        registry.resolve("m", download=True)
    server.ignore_range = True
    registry.resolve("m", download=True)
    assert server.requests[-1] == ("/w.bin", "bytes=3000-")
    assert dest.read_bytes() == DATA  # the whole file once, not appended to the part


def test_complete_part_answered_416_is_kept(server, monkeypatch):
    server.files["/w.bin"] = DATA
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin"], SHA)
    dest.parent.mkdir(parents=True)
    dest.with_name("w.bin.part").write_bytes(DATA)
    dest.with_name("w.bin.part.url").write_text(f"{server.base}/w.bin\n")
    registry.resolve("m", download=True)
    assert server.requests == [("/w.bin", f"bytes={len(DATA)}-")]
    assert dest.read_bytes() == DATA


def test_part_from_another_mirror_is_not_resumed(server, monkeypatch):
    server.files["/w.bin"] = DATA
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin"])
    dest.parent.mkdir(parents=True)
    dest.with_name("w.bin.part").write_bytes(b"other mirror's bytes")
    dest.with_name("w.bin.part.url").write_text("https://elsewhere.example/w.bin\n")
    registry.resolve("m", download=True)
    assert server.requests == [("/w.bin", None)] and dest.read_bytes() == DATA


def test_sha256_mismatch_deletes_the_download(server, monkeypatch):
    server.files["/w.bin"] = DATA
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin"], "0" * 64)
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("m", download=True)
    msg = str(e.value)
    assert "w.bin" in msg and f"expected {'0' * 64}, got {SHA}" in msg and "\n" not in msg
    assert not dest.exists() and not dest.with_name("w.bin.part").exists()


def test_sha256_recorded_after_download_and_trusted_later(server, monkeypatch):
    server.files["/w.bin"] = DATA
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin"])  # registry does not know the sha
    registry.resolve("m", download=True)
    assert dest.with_name("w.bin.sha256").read_text() == f"{SHA}  w.bin\n"
    n = len(server.requests)

    def no_hashing(path):
        raise AssertionError("a cached file with a fresh record is not hashed again")

    with monkeypatch.context() as m:
        m.setattr(registry, "sha256sum", no_hashing)
        assert registry.resolve("m", download=True) == dest
    assert len(server.requests) == n
    # a file changed after its record was written is caught
    dest.write_bytes(b"truncated")
    record = dest.with_name("w.bin.sha256")
    t = record.stat().st_mtime_ns
    import os

    os.utime(dest, ns=(t + 10**9, t + 10**9))
    with pytest.raises(ModelNotFoundError, match="changed since it was downloaded"):
        registry.resolve("m", download=True)


def test_placed_file_is_checked_against_the_registry_sha(monkeypatch):
    dest = add_model(monkeypatch, "m", ["http://127.0.0.1:9/w.bin"], SHA)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not the weights")
    with pytest.raises(ModelNotFoundError, match="registry expects"):
        registry.resolve("m", download=False)
    dest.write_bytes(DATA)
    assert registry.resolve("m", download=False) == dest
    assert dest.with_name("w.bin.sha256").read_text().split()[0] == SHA


@pytest.mark.parametrize("var", ["NUCFM_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_makes_no_request_and_says_where_to_put_the_file(server, monkeypatch, var):
    server.files["/w.bin"] = DATA
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin"])
    monkeypatch.setenv(var, "1")
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("m")
    msg = str(e.value)
    assert server.requests == []
    assert f"{server.base}/w.bin" in msg and str(dest) in msg and "\n" not in msg


def test_all_mirrors_down_is_one_line(server, monkeypatch):
    server.status["/w.bin"] = 403
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    dest = add_model(monkeypatch, "m", [f"{server.base}/w.bin", f"http://127.0.0.1:{dead}/w.bin"])
    with pytest.raises(ModelNotFoundError) as e:
        registry.resolve("m", download=True)
    msg = str(e.value)
    assert "\n" not in msg
    assert "could not download" in msg and "HTTP 403" in msg and f"127.0.0.1:{dead}" in msg
    assert f"download {server.base}/w.bin and put it at {dest}" in msg


def test_cli_prints_a_download_failure_on_one_line(server, monkeypatch, capsys, tmp_path):
    from nucfm.cli import main

    server.status["/w.bin"] = 403
    add_model(monkeypatch, "m", [f"{server.base}/w.bin"])
    fasta = tmp_path / "x.fa"
    fasta.write_text(">a\nACGU\n")
    assert main(["embed", "-i", str(fasta), "-o", str(tmp_path / "e.h5"), "--model", "m"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nucfm: error: model 'm' is not in the cache") and "\n" not in err


def test_stalled_download_times_out(server, monkeypatch):
    server.files["/w.bin"] = DATA
    server.stall_after["/w.bin"] = 100
    monkeypatch.setattr(registry, "TIMEOUT_S", 0.3)
    add_model(monkeypatch, "m", [f"{server.base}/w.bin"])
    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="timed out after 0.3 s"):
        registry.resolve("m", download=True)
    assert time.perf_counter() - t0 < 2.5


def test_hf_endpoint_replaces_hugging_face(server, monkeypatch):
    server.files["/org/repo/resolve/main/w.bin"] = DATA
    dest = add_model(monkeypatch, "m", ["https://huggingface.co/org/repo/resolve/main/w.bin"], SHA)
    monkeypatch.setenv("HF_ENDPOINT", server.base + "/")
    assert registry.mirrors("m", registry.MODELS["m"].files[0]) == [f"{server.base}/org/repo/resolve/main/w.bin"]
    registry.resolve("m", download=True)
    assert dest.read_bytes() == DATA


def test_nucfm_mirror_is_tried_first(server, monkeypatch):
    server.files["/mirror/m/w.bin"] = DATA
    add_model(monkeypatch, "m", ["https://huggingface.co/org/repo/resolve/main/w.bin"], SHA)
    monkeypatch.setenv("NUCFM_MIRROR", f"{server.base}/mirror")
    registry.resolve("m", download=True)
    assert server.requests == [("/mirror/m/w.bin", None)]


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
    server.files[f"/{f.filename}"] = data
    local = dataclasses.replace(f, urls=(f"{server.base}/{f.filename}",), sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(registry.MODELS, name, dataclasses.replace(entry, files=(local,)))
    lm = Transformer(TransformerConfig(num_layers=1, hidden_size=16, num_heads=2, ffn_size=32, max_len=30)).eval()
    pred = load_structure_model(name, lm=lm)
    assert pred.decode_options.threshold == threshold
    assert pred.predict_probs(["GGGAAACCC"])[0].shape == (9, 9)
