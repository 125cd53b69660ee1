"""`nucfm serve`: every endpoint, every bad input (a 4xx JSON error, never a traceback), the limits,
the queue (429 + Retry-After), the per-job deadline, and the command line. Tiny models, a toy genome."""

import gzip
import io
import json
import threading
import time
import zipfile

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="nucfm serve needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("multipart", reason="nucfm serve needs python-multipart: pip install -e '.[serve]'")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (test extra)")

from fastapi.testclient import TestClient  # noqa: E402

from nucfm.serve import work  # noqa: E402
from nucfm.serve.app import create_app  # noqa: E402
from nucfm.serve.capabilities import CAPABILITIES, Capability, offered  # noqa: E402
from nucfm.serve.settings import Limits, limits_from  # noqa: E402

from serve_fixtures import GENOME, png_size, slots, write_genome  # noqa: E402

FASTA = ">hairpin\nGGGAAACUUCGGUUUCCC\n>trna frag\nGCGGAUUUAGCUCAGUUGGGAGAGC\n"
TSV = ("chrom\tpos\tref\talt\tnote\nchr1\t5\tT\tC\tfirst\nchr1\t6\tT\tA\tx\nchr1\t6\tG\tA\tmismatch\n"
       "chrX\t1\tA\tC\tnope\n")
VCF = ("##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr1\t5\trs1\tT\tC,G\t.\tPASS\tDP=3\nchr1\t300\trs2\tC\t<DEL>\t.\t.\t.\n")


@pytest.fixture(scope="module")
def genome_path(tmp_path_factory):
    return write_genome(tmp_path_factory.mktemp("genome") / "toy.fa")


def make_client(genome_path, **limits):
    models, genomes = slots(genome_path)
    return TestClient(create_app(models, genomes, Limits(**limits)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(genome_path):
    with make_client(genome_path, max_records=5, max_fold_len=200, max_embed_len=300, max_variants=20,
                     max_region=50, max_body_mb=0.05) as c:
        yield c


def error_of(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in r.text and "/tmp/" not in body["error"]
    return body["error"]


def wait_job(client, job, seconds=30):
    t0 = time.time()
    while job["status"] in ("queued", "running"):
        assert time.time() - t0 < seconds
        time.sleep(0.05)
        job = client.get(job["url"]).json()
    return job


# ---- discovery and the page ---------------------------------------------------------------------
def test_capabilities_list_models_genomes_and_limits(client):
    caps = client.get("/api/capabilities").json()
    assert [c["name"] for c in caps["capabilities"]] == ["fold", "embed", "vep", "probs"]
    by = {c["name"]: c for c in caps["capabilities"]}
    assert by["fold"]["models"] == ["tiny-ss"] and by["vep"]["genomes"] == ["toy"]
    assert by["embed"]["asynchronous"] and by["fold"]["path"] == "/api/fold"
    assert caps["genomes"][0]["contigs"] == [{"name": "chr1", "length": 300}, {"name": "chr2", "length": 100}]
    assert caps["limits"]["max_records"] == 5
    assert client.get("/api/health").json()["status"] == "ok"


def test_capabilities_follow_what_is_loaded():
    assert [c.name for c in offered({"a": "ss"}, {})] == ["fold"]
    assert [c.name for c in offered({"a": "dna"}, {})] == []  # variant tasks need a genome
    assert [c.name for c in offered({"a": "dna"}, {"g": 1})] == ["vep", "probs"]
    # a capability is one entry: offered as soon as a model of its kind is loaded
    assert [c.name for c in offered({"a": "contact"}, {})] == ["contacts"]
    extra = Capability("rbp", "RNA-protein binding", "task", "a function-task head")
    assert extra.model_kind not in {c.model_kind for c in CAPABILITIES}


def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/static/app.js" in r.text and "http" not in r.text.split("<body>")[0].replace("http-equiv", "")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    error_of(client.get("/static/../app.py"), 404)
    assert client.get("/docs").status_code == 200 and client.get("/openapi.json").json()["paths"]["/api/fold"]


# ---- fold ---------------------------------------------------------------------------------------
def test_fold_returns_structures_pictures_and_downloads(client):
    r = client.post("/api/fold", data={"text": FASTA})
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert [x["id"] for x in res["records"]] == ["hairpin", "trna"]
    rec = res["records"][0]
    assert len(rec["dot_bracket"]) == rec["length"] == 18 and set(rec["dot_bracket"]) <= set(".()[]{}<>")
    w, h = png_size(client.get(rec["plot"]).content)
    assert w > 500 and h > 300
    dbn = client.get(res["downloads"]["dbn"]).text
    assert dbn.startswith(">hairpin\nGGGAAACUUCGGUUUCCC\n" + rec["dot_bracket"])
    assert client.get(res["downloads"]["ct"]).text.startswith("18\thairpin")
    z = zipfile.ZipFile(io.BytesIO(client.get(res["downloads"]["bpseq"]).content))
    assert sorted(z.namelist()) == ["hairpin.bpseq", "trna.bpseq"]
    probs = np.load(io.BytesIO(client.get(res["downloads"]["probs"]).content))
    assert probs["hairpin"].shape == (18, 18)


def test_fold_upload_gzip_one_record_and_options(client):
    data = gzip.compress(b">one\nGGGGAAAACCCC\n")
    r = client.post("/api/fold", files={"file": ("x.fa.gz", data)}, data={"threshold": "1", "canonical_only": "true"})
    res = r.json()["result"]
    assert res["records"][0]["dot_bracket"] == "." * 12 and res["threshold"] == 1
    assert res["downloads"]["bpseq"].endswith("/one.bpseq")


@pytest.mark.parametrize("data,files,status,words", [
    ({}, None, 422, "no FASTA"),
    ({"text": "   \n"}, None, 422, "empty"),
    ({"text": "hello world"}, None, 422, "not FASTA"),
    (None, {"file": ("x.fa", b"\x00\x01binary\x02" * 10)}, 422, "FASTA"),
    ({"text": "".join(f">r{i}\nACGU\n" for i in range(6))}, None, 422, "more than 5 records"),
    ({"text": ">long\n" + "A" * 201 + "\n"}, None, 422, "longer than this server's fold limit of 200"),
    ({"text": FASTA, "model": "rna-fm"}, None, 422, "unknown structure model"),
    ({"text": FASTA, "model": "tiny-rna"}, None, 422, "unknown structure model"),
    ({"text": FASTA, "model": "../../etc/passwd"}, None, 422, "unknown structure model"),
    ({"text": FASTA, "threshold": "1.5"}, None, 422, "threshold"),
    ({"text": FASTA, "threshold": "abc"}, None, 422, "threshold"),
    ({"text": FASTA, "decode": "viterbi"}, None, 422, "decode"),
])
def test_fold_bad_inputs_are_4xx_json(client, data, files, status, words):
    assert words in error_of(client.post("/api/fold", data=data, files=files), status)


def test_oversized_bodies_are_refused_with_413(client):
    big = ">big\n" + "ACGU" * 20_000 + "\n"  # 80 kB > 0.05 MiB
    assert "limit" in error_of(client.post("/api/fold", data={"text": big}), 413)
    assert "limit" in error_of(client.post("/api/fold", files={"file": ("a.fa", big.encode())}), 413)

    def chunks():  # no Content-Length: counted as it arrives
        yield b"text=%3Ebig%0A"
        for _ in range(20):
            yield b"A" * 8192

    r = client.post("/api/fold", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    error_of(r, 413)


def test_an_empty_record_folds_to_nothing(client):
    r = client.post("/api/fold", data={"text": ">empty\n\n>ok\nGGGAAACCC\n"})
    recs = r.json()["result"]["records"]
    assert recs[0]["dot_bracket"] == "" and recs[1]["length"] == 9
    assert png_size(client.get(recs[0]["plot"]).content)[0] > 0


# ---- embed --------------------------------------------------------------------------------------
def test_embed_per_residue_hdf5_with_a_job_to_poll(client):
    import h5py

    r = client.post("/api/embed", data={"text": FASTA})
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running", "done")
    job = wait_job(client, r.json())
    assert job["status"] == "done" and job["progress"]["done"] == job["progress"]["total"] == 43
    with h5py.File(io.BytesIO(client.get(job["result"]["download"]).content)) as f:
        assert f["embeddings/hairpin"].shape == (18, 16)


def test_embed_pooled_parquet_and_wait(client):
    import pandas as pd

    r = client.post("/api/embed?wait=true", data={"text": FASTA, "pool": "mean", "layer": "1"})
    assert r.status_code == 200 and r.json()["result"]["layer"] == 1
    df = pd.read_parquet(io.BytesIO(client.get(r.json()["result"]["download"]).content))
    assert list(df.id) == ["hairpin", "trna"] and len(df.embedding[0]) == 16


@pytest.mark.parametrize("data,words", [
    ({"text": FASTA, "pool": "max"}, "pool"),
    ({"text": FASTA, "layer": "x"}, "layer"),
    ({"text": FASTA, "model": "tiny-ss"}, "unknown RNA language model"),
    ({"text": ">x\n" + "A" * 301}, "embed limit of 300"),
    ({}, "no FASTA"),
])
def test_embed_bad_inputs(client, data, words):
    assert words in error_of(client.post("/api/embed?wait=true", data=data), 422)


def test_embed_bad_layer_fails_the_job_with_422(client):
    job = client.post("/api/embed", data={"text": FASTA, "layer": "7"}).json()
    job = wait_job(client, job)
    assert job["status"] == "failed" and "layer 7 does not exist" in job["error"]
    error_of(client.get(job["url"]), 422)


# ---- variant effects ----------------------------------------------------------------------------
def test_vep_scores_a_pasted_table_keeping_every_row(client):
    r = client.post("/api/vep", data={"text": TSV, "genome": "toy"})
    res = r.json()["result"]
    assert res["columns"] == ["chrom", "pos", "ref", "alt", "note", "score", "status"]
    status = [row[-1] for row in res["rows"]]
    assert status == ["ok", "ref_mismatch:genome=G", "ok", "unknown_contig"]
    assert isinstance(res["rows"][0][5], float) and res["rows"][1][5] is None
    assert res["counts"]["ok"] == 2 and res["format"] == "tsv"
    text = client.get(res["download"]).text
    assert text.splitlines()[0] == "chrom\tpos\tref\talt\tnote\tscore\tstatus"


def test_vep_vcf_upload_comes_back_as_vcf(client):
    r = client.post("/api/vep", files={"file": ("my.vcf.gz", gzip.compress(VCF.encode()))})
    res = r.json()["result"]
    assert res["format"] == "vcf" and [row[-1] for row in res["rows"]] == ["ok", "ok", "symbolic_allele"]
    assert res["download"].endswith("/scored.vcf.gz")
    out = gzip.decompress(client.get(res["download"]).content).decode()
    assert "##INFO=<ID=NUCFM_SCORE," in out and "NUCFM_SCORE_STATUS=ok,ok" in out


@pytest.mark.parametrize("data,files,words", [
    ({"text": TSV, "genome": "hg38"}, None, "unknown genome 'hg38'"),
    ({"text": TSV, "genome": "/etc/hosts"}, None, "unknown genome"),
    ({"text": TSV, "model": "tiny-rna"}, None, "unknown DNA language model"),
    ({"text": TSV, "method": "magic"}, None, "method"),
    ({"text": TSV, "window": "0"}, None, "window"),
    ({"text": TSV, "window": "100000"}, None, "window"),
    (None, {"file": ("v.bed", b"chr1\t1\t2\n")}, "unknown variant file type"),
    ({"text": "chrom\tpos\tref\talt\n" + "chr1\t5\tT\tC\n" * 21}, None, "limit of 20"),
    ({"text": "a\tb\n1\t2\n"}, None, "chrom"),
    ({"text": "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"}, None, "no variants"),
    ({}, None, "no variants"),
])
def test_vep_bad_inputs(client, data, files, words):
    assert words in error_of(client.post("/api/vep", data=data, files=files), 422)


# ---- probabilities ------------------------------------------------------------------------------
def test_probs_give_distributions_and_information(client):
    r = client.post("/api/probs", data={"region": "chr1:1-20", "genome": "toy"})
    res = r.json()["result"]
    p = np.array(res["probs"])
    assert p.shape == (20, 4) and np.allclose(p.sum(1), 1, atol=1e-4)
    assert res["ref"] == GENOME["chr1"][:20] and res["pos"][0] == 1
    assert all(0 <= b <= 2 for b in res["information"])
    assert client.get(res["download"]).text.startswith("chrom\tpos\tA\tC\tG\tT\tref")


@pytest.mark.parametrize("data,words", [
    ({"region": "chr1:1-51"}, "limit of 50"),
    ({"region": "chr1"}, "expected CHROM:START-END"),
    ({"region": "chr1:20-10"}, "START must be"),
    ({"region": "chr9:1-10"}, "chr9"),
    ({"region": "chr2:90-110"}, "not inside chr2"),
    ({"region": "chr1:1-10", "strands": "rev"}, "strands"),
    ({}, "region"),
])
def test_probs_bad_inputs(client, data, words):
    assert words in error_of(client.post("/api/probs", data=data), 422)


# ---- jobs ---------------------------------------------------------------------------------------
def test_unknown_jobs_files_and_plots_are_404(client):
    job = client.post("/api/fold", data={"text": FASTA}).json()
    error_of(client.get("/api/jobs/nope"), 404)
    error_of(client.get(f"/api/jobs/{job['id']}/files/../../etc/passwd"), 404)
    error_of(client.get(f"/api/jobs/{job['id']}/files/input.fa"), 404)  # the upload is not a download
    error_of(client.get(f"/api/jobs/{job['id']}/plots/9.png"), 422)
    error_of(client.get(f"/api/jobs/{job['id']}/plots/x.png"), 422)
    emb = wait_job(client, client.post("/api/embed", data={"text": FASTA}).json())
    error_of(client.get(f"/api/jobs/{emb['id']}/plots/0.png"), 404)


def test_a_full_queue_answers_429_with_retry_after(genome_path):
    with make_client(genome_path, queue=1, workers=1) as c:
        lock = c.app.state.jobs  # the manager; hold the structure model's lock to keep one job running
        from nucfm.serve.resources import VIENNA_LOCK

        with VIENNA_LOCK:
            first = c.post("/api/fold?wait=false", data={"text": FASTA})
            assert first.status_code == 202
            r = c.post("/api/fold", data={"text": FASTA})
            assert "busy" in error_of(r, 429) and int(r.headers["Retry-After"]) >= 1
            assert lock.active == 1
        assert wait_job(c, first.json())["status"] == "done"
        assert c.post("/api/fold", data={"text": FASTA}).status_code == 200


def test_a_job_past_its_deadline_answers_504(genome_path):
    with make_client(genome_path, job_timeout=1e-6) as c:
        assert "time limit" in error_of(c.post("/api/fold", data={"text": FASTA}), 504)


def test_unexpected_errors_are_500_without_details(genome_path, monkeypatch, caplog):
    def broken(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(work, "fold", broken)
    monkeypatch.setattr(work, "embed", broken)
    with make_client(genome_path) as c:
        r = c.post("/api/fold", data={"text": FASTA})
        assert "secret" not in error_of(r, 500)
        job = wait_job(c, c.post("/api/embed", data={"text": FASTA}).json())
        assert job["status"] == "failed" and "secret" not in job["error"]
    assert "secret internals" in caplog.text


def test_concurrent_requests_share_the_workers(client):
    results = []

    def go():
        results.append(client.post("/api/fold", data={"text": FASTA}).status_code)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 6


# ---- settings and the command line --------------------------------------------------------------
def test_limits_from_options_and_environment():
    lim = limits_from({"max_records": 7, "queue": None}, environ={"NUCFM_SERVE_QUEUE": "3",
                                                                  "NUCFM_SERVE_MAX_BODY_MB": "0.5"})
    assert (lim.max_records, lim.queue, lim.max_body_bytes) == (7, 3, 512 * 1024)
    from nucfm.errors import InputError

    with pytest.raises(InputError, match="NUCFM_SERVE_QUEUE"):
        limits_from(environ={"NUCFM_SERVE_QUEUE": "many"})
    with pytest.raises(InputError, match="queue"):
        Limits(queue=0)


def test_cli_serve_checks_before_loading(tmp_path, capsys, monkeypatch):
    from nucfm.cli import main

    assert main(["serve", "--genome", "toy"]) == 2
    assert "NAME=PATH" in capsys.readouterr().err
    assert main(["serve", "--genome", f"toy={tmp_path / 'missing.fa'}"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["serve", "--model", "no-such-model"]) == 2
    assert main(["serve", "--queue", "0"]) == 2
    monkeypatch.setenv("NUCFM_SERVE_MAX_RECORDS", "lots")
    assert main(["serve"]) == 2
    assert "NUCFM_SERVE_MAX_RECORDS" in capsys.readouterr().err
    monkeypatch.delenv("NUCFM_SERVE_MAX_RECORDS")
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve"]) == 2
    assert "pip install 'nucfm[serve]'" in capsys.readouterr().err


def test_cli_serve_warns_when_bound_beyond_loopback(monkeypatch, caplog, genome_path):
    import uvicorn

    from nucfm.cli import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123", "--model", "nucfm-ss-res8x24-vienna3-bprna",
                 "--genome", f"toy={genome_path}", "--max-records", "3"]) == 0
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8123
    assert seen["app"].state.limits.max_records == 3
    assert "anyone who can reach port 8123" in caplog.text
    assert "no DNA model" in caplog.text
    json.dumps(TestClient(seen["app"]).get("/api/capabilities").json())


def test_contacts_capability_appears_with_a_contact_model(genome_path):
    """A contact model makes the contacts capability (one entry) appear; its endpoint returns top
    pairs and a maps download; a structure model is not taken for it."""
    import dataclasses as dc

    from nucfm.models.structure import StructureModel
    from nucfm.serve.resources import ModelSlot

    from serve_fixtures import tiny_structure_model

    ss = tiny_structure_model()
    contact = StructureModel(ss.head, dc.replace(ss.config, task="contact"), name="tiny-contact")
    app = create_app([ModelSlot("tiny-contact", "contact", contact)], [], Limits(max_fold_len=200))
    with TestClient(app, raise_server_exceptions=False) as c:
        caps = c.get("/api/capabilities").json()["capabilities"]
        assert [x["name"] for x in caps] == ["contacts"]
        r = c.post("/api/contacts", data={"text": FASTA, "top_k": "3"})
        assert r.status_code == 200, r.text
        recs = r.json()["result"]["records"]
        assert [x["id"] for x in recs] == ["hairpin", "trna"]
        top = recs[0]["top_pairs"]
        assert len(top) == 3 and all(t["j"] - t["i"] >= 6 for t in top)
        assert [t["p"] for t in top] == sorted((t["p"] for t in top), reverse=True)
        maps = c.get(r.json()["result"]["downloads"]["maps"]).content
        assert maps[:2] == b"PK"  # a .npz (zip)
        assert c.post("/api/fold", data={"text": FASTA}).status_code == 422  # no structure model here
        assert c.post("/api/contacts", data={"text": FASTA, "top_k": "0"}).status_code == 422


def test_fold_keeps_a_record_whose_pairs_cross_beyond_dot_bracket(genome_path):
    """Pairs that cross more than 30 bracket types can write (as an untrained head's may): the
    record is still folded, its dot-bracket holds what it can and says how many pairs it left out
    (the pair list and the BPSEQ / CT downloads hold all of them)."""
    import dataclasses as dc

    import numpy as np

    from nucfm.models.structure import StructureModel
    from nucfm.serve.resources import ModelSlot

    from serve_fixtures import tiny_structure_model

    class Crossing(StructureModel):  # 40 mutually crossing pairs (i, i + 200): 40 bracket pages
        def predict_probs(self, seqs, **kwargs):
            out = []
            for s in seqs:
                p = np.zeros((len(s), len(s)), dtype=np.float32)
                for i in range(40):
                    p[i, i + 200] = p[i + 200, i] = 0.9
                out.append(p)
            return out

    ss = tiny_structure_model()
    decode = {**ss.config.decode, "pseudoknots": True, "min_hairpin": 0}
    model = Crossing(ss.head, dc.replace(ss.config, decode=decode), name="crossing")
    app = create_app([ModelSlot("crossing", "ss", model)], [], Limits(max_fold_len=500))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/fold", data={"text": ">long\n" + "A" * 300 + "\n"})
        assert r.status_code == 200, r.text
        rec = r.json()["result"]["records"][0]
        assert len(rec["pairs"]) == 40 and rec["pairs_not_in_dot_bracket"] == 10
        assert sum(ch != "." for ch in rec["dot_bracket"]) == 2 * 30
