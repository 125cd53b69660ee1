"""The FastAPI application of ``nucfm serve``: a JSON API that mirrors the CLI (OpenAPI at
``/docs``), the page at ``/`` (plain files from ``nucfm/serve/static``, no build step, no CDN).

Every error is JSON ``{"error": "one line"}`` with a 4xx status: 413 body too large, 422 bad input
(:class:`~nucfm.errors.InputError`, request validation), 400 other :class:`~nucfm.errors.NucfmError`,
404 unknown job or file, 429 queue full (with ``Retry-After``), 504 a job past its time limit.
An unexpected exception is logged with its traceback and answered 500 with no details.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import logging
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from nucfm import __version__
from nucfm.errors import InputError, NucfmError
from nucfm.serve import work
from nucfm.serve.capabilities import offered
from nucfm.serve.jobs import Job, JobManager, QueueFull
from nucfm.serve.resources import GenomeSlot, ModelSlot
from nucfm.serve.settings import Limits

log = logging.getLogger("nucfm.serve")
STATIC = Path(__file__).parent / "static"
GZIP_MAGIC = b"\x1f\x8b"


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is refused with 413, by its
    ``Content-Length`` before it is read, or (chunked uploads) as soon as the bytes read pass it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _too_large(self.max_bytes)(scope, receive, send)
        seen, exceeded, answered = 0, False, False

        async def limited():
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded(message):  # whatever the app answers to a cut-off body (a parse error), it is 413
            nonlocal answered
            if not exceeded:
                return await send(message)
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await _too_large(self.max_bytes)(scope, receive, send)

        try:
            await self.app(scope, limited, guarded)
        except BodyTooLarge:
            if not answered:
                await _too_large(self.max_bytes)(scope, receive, send)


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse({"error": f"request body over this server's limit of {max_bytes / 2**20:g} MiB "
                                  "(nucfm serve --max-body-mb)"}, status_code=413)


def _error(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else e.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return _error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        return _error(422, _validation_message(exc))

    @app.exception_handler(NucfmError)
    async def nucfm_error(request, exc: NucfmError):
        return _error(422 if isinstance(exc, InputError) else 400, exc)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request, exc):
        return _too_large(request.app.state.limits.max_body_bytes)

    @app.exception_handler(QueueFull)
    async def queue_full(request, exc: QueueFull):
        return _error(429, exc, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Exception)
    async def unexpected(request, exc: Exception):  # logged in full here; the client gets no traceback
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal server error; the server log has the details")


# ---- request helpers ----------------------------------------------------------------------------
async def _input_bytes(text: str | None, file: UploadFile | None, what: str) -> tuple[bytes, str]:
    """The request's input (an uploaded ``file`` or pasted ``text``) and the client's file name
    (used only for its extension)."""
    if file is not None:
        data, name = await file.read(), file.filename or ""
    elif text is not None:
        data, name = text.encode("utf-8"), ""
    else:
        raise InputError(f"no {what}: paste it as the form field 'text' or upload it as 'file'")
    if not data.strip():
        raise InputError(f"the {what} is empty")
    return data, name


def _fasta_name(data: bytes) -> str:
    return "input.fa.gz" if data[:2] == GZIP_MAGIC else "input.fa"


def _variants_name(data: bytes, filename: str, fmt: str | None) -> str:
    """A fixed name with the input's extension: the client's file name never becomes a path."""
    from nucfm.io.variants import detect_format

    gz = data[:2] == GZIP_MAGIC
    if fmt is None and filename:
        fmt = detect_format(filename)
    if fmt is None:  # pasted text: sniff it
        try:
            head = (gzip.decompress(data[:65536]) if gz else data[:4096]).decode("utf-8", "replace")
        except (OSError, EOFError):
            head = ""
        first = head.lstrip("\ufeff").split("\n", 1)[0]
        fmt = "vcf" if first.startswith(("##fileformat=VCF", "#CHROM")) else ("tsv" if "\t" in first else "csv")
    if fmt == "parquet":
        return "input.parquet"
    return f"input.{fmt}" + (".gz" if gz else "")


def _stage(job: Job, data: bytes, name: str) -> Path:
    path = job.dir / name
    path.write_bytes(data)
    return path


def _pick(slots: dict, name: str | None, what: str, kind: str | None = None):
    candidates = {k: s for k, s in slots.items() if kind is None or s.kind == kind}
    if name is None:
        if not candidates:
            raise InputError(f"this server has no {what}")
        return next(iter(candidates.values()))
    if name not in candidates:
        raise InputError(f"unknown {what} {name!r}; this server has: {', '.join(candidates) or 'none'}")
    return candidates[name]


async def _answer(job: Job, wait: bool) -> JSONResponse:
    if wait:
        await asyncio.wrap_future(job.future)
    if job.status == "failed":
        return JSONResponse(job.to_json(), status_code=job.error_status or 500)
    return JSONResponse(job.to_json(), status_code=200 if job.status == "done" else 202)


# ---- the application ----------------------------------------------------------------------------
def create_app(models: list[ModelSlot], genomes: list[GenomeSlot] = (), limits: Limits | None = None,
               workdir: str | Path | None = None) -> FastAPI:
    """The app over loaded ``models`` and ``genomes``. Uploads and results live in a private
    temporary directory (under ``workdir`` when given), removed at shutdown."""
    limits = limits or Limits()
    root = Path(tempfile.mkdtemp(prefix="nucfm-serve-", dir=workdir))
    manager = JobManager(limits, root / "jobs")
    model_slots = {m.name: m for m in sorted(models, key=lambda m: m.name)}
    genome_slots = {g.name: g for g in genomes}

    @asynccontextmanager
    async def lifespan(app):
        yield
        manager.shutdown()

    app = FastAPI(title="nucfm", version=__version__, lifespan=lifespan,
                  description="Nucleotide foundation models on your own machine: RNA secondary structure, "
                  "embeddings, variant effects and position probabilities. Mirrors the `nucfm` command.")
    app.state.limits, app.state.jobs, app.state.root = limits, manager, root
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    install_error_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if not request.url.path.startswith(("/docs", "/redoc")):  # the docs page loads its own assets
            response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:")
        return response

    def capabilities() -> list[dict]:
        kinds = {n: s.kind for n, s in model_slots.items()}
        out = []
        for c in offered(kinds, genome_slots):
            d = dataclasses.asdict(c) | {"path": f"/api/{c.name}"}
            d["models"] = [n for n, k in kinds.items() if k == c.model_kind]
            d["genomes"] = list(genome_slots) if c.needs_genome else []
            out.append(d)
        return out

    @app.get("/api/capabilities", summary="What this server can do: tasks, models, genomes, limits")
    def get_capabilities():
        return {"version": __version__, "capabilities": capabilities(),
                "models": [m.info() for m in model_slots.values()],
                "genomes": [g.info() for g in genome_slots.values()], "limits": dataclasses.asdict(limits)}

    @app.get("/api/health", summary="Liveness and queue occupancy")
    def health():
        return {"status": "ok", "jobs_active": manager.active, "queue": limits.queue}

    @app.post("/api/fold", summary="Fold FASTA records (as `nucfm fold`)")
    async def fold(text: Annotated[str | None, Form(description="FASTA text")] = None,
                   file: Annotated[UploadFile | None, File(description="FASTA file (plain or gzip)")] = None,
                   model: Annotated[str | None, Form()] = None,
                   threshold: Annotated[float | None, Form(ge=0, le=1)] = None,
                   decode: Annotated[Literal["greedy", "matching"] | None, Form()] = None,
                   canonical_only: Annotated[bool, Form()] = False,
                   no_pseudoknots: Annotated[bool, Form()] = False,
                   wait: bool = True):
        slot = _pick(model_slots, model, "structure model", "ss")
        data, _ = await _input_bytes(text, file, "FASTA")
        changes = {k: v for k, v in {"threshold": threshold, "method": decode}.items() if v is not None}
        if canonical_only:
            changes["canonical_only"] = True
        if no_pseudoknots:
            changes["pseudoknots"] = False
        opts = dataclasses.replace(slot.model.decode_options, **changes)
        job = manager.submit("fold", lambda j: work.fold(j, slot, _stage(j, data, _fasta_name(data)), opts, limits))
        return await _answer(job, wait)

    @app.post("/api/contacts", summary="Contact maps and top pairs of FASTA records (as `nucfm contacts`)")
    async def contacts(text: Annotated[str | None, Form(description="FASTA text")] = None,
                       file: Annotated[UploadFile | None, File(description="FASTA file (plain or gzip)")] = None,
                       model: Annotated[str | None, Form()] = None,
                       top_k: Annotated[int | None, Form(ge=1, le=100_000)] = None,
                       wait: bool = True):
        slot = _pick(model_slots, model, "contact model", "contact")
        data, _ = await _input_bytes(text, file, "FASTA")
        job = manager.submit("contacts", lambda j: work.contacts(j, slot, _stage(j, data, _fasta_name(data)), top_k,
                                                                 limits))
        return await _answer(job, wait)

    @app.post("/api/embed", status_code=202, summary="Embed FASTA records (as `nucfm embed`); poll the job")
    async def embed(text: Annotated[str | None, Form(description="FASTA text")] = None,
                    file: Annotated[UploadFile | None, File(description="FASTA file (plain or gzip)")] = None,
                    model: Annotated[str | None, Form()] = None,
                    pool: Annotated[Literal["none", "mean"], Form(description="none: per residue, HDF5; "
                                                                  "mean: pooled, Parquet")] = "none",
                    layer: Annotated[int, Form()] = -1,
                    wait: bool = False):
        slot = _pick(model_slots, model, "RNA language model", "rna")
        data, _ = await _input_bytes(text, file, "FASTA")
        job = manager.submit("embed", lambda j: work.embed(j, slot, _stage(j, data, _fasta_name(data)), pool, layer,
                                                           limits))
        return await _answer(job, wait)

    @app.post("/api/vep", summary="Score variants against a configured genome (as `nucfm vep`)")
    async def vep(text: Annotated[str | None, Form(description="VCF, TSV or CSV text")] = None,
                  file: Annotated[UploadFile | None, File(description="VCF[.gz], TSV, CSV or Parquet")] = None,
                  genome: Annotated[str | None, Form()] = None,
                  model: Annotated[str | None, Form()] = None,
                  format: Annotated[Literal["vcf", "tsv", "csv"] | None, Form(description="of pasted text "
                                                                              "(default: sniffed)")] = None,
                  method: Annotated[Literal["llr", "alt_logprob"], Form()] = "llr",
                  window: Annotated[int | None, Form(ge=1, le=4096)] = None,
                  wait: bool = True):
        slot = _pick(model_slots, model, "DNA language model", "dna")
        gslot = _pick(genome_slots, genome, "genome")
        data, filename = await _input_bytes(text, file, "variants")
        name = _variants_name(data, filename, format)
        window = window or min(512, slot.model.max_len or 512)
        job = manager.submit("vep", lambda j: work.vep(j, slot, gslot, _stage(j, data, name), method, window, limits))
        return await _answer(job, wait)

    @app.post("/api/probs", summary="A/C/G/T probabilities over a genome region (as `nucfm probs`)")
    async def probs(region: Annotated[str, Form(description="CHROM:START-END, 1-based inclusive")],
                    genome: Annotated[str | None, Form()] = None,
                    model: Annotated[str | None, Form()] = None,
                    strands: Annotated[Literal["both", "fwd"], Form()] = "both",
                    window: Annotated[int | None, Form(ge=1, le=4096)] = None,
                    wait: bool = True):
        slot = _pick(model_slots, model, "DNA language model", "dna")
        gslot = _pick(genome_slots, genome, "genome")
        window = window or min(512, slot.model.max_len or 512)
        job = manager.submit("probs", lambda j: work.probs(j, slot, gslot, region, strands, window, limits))
        return await _answer(job, wait)

    def _job(job_id: str) -> Job:
        job = manager.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (finished jobs are kept {limits.result_ttl:g} s)")
        return job

    @app.get("/api/jobs/{job_id}", summary="A job's status, progress and result")
    def get_job(job_id: str):
        job = _job(job_id)
        status = job.error_status if job.status == "failed" else 200
        return JSONResponse(job.to_json(), status_code=status or 500)

    @app.get("/api/jobs/{job_id}/files/{name}", summary="Download one of a finished job's files")
    def get_file(job_id: str, name: str):
        job = _job(job_id)
        if name not in job.files:
            raise HTTPException(404, f"job {job_id} has no file {name!r}")
        path, media = job.files[name]
        return FileResponse(path, media_type=media, filename=name)

    @app.get("/api/jobs/{job_id}/plots/{index}.png", summary="Pair-probability map and 2D drawing of a fold record")
    async def get_plot(job_id: str, index: int):
        job = _job(job_id)
        if job.kind != "fold" or job.status != "done":
            raise HTTPException(404, f"job {job_id} is not a finished fold job")
        png = await asyncio.to_thread(work.fold_plot, job, index)
        return FileResponse(png, media_type="image/png")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(models: list[str], genomes: list[str], host: str = "127.0.0.1", port: int = 8000,
          limits: Limits | None = None, device=None, log_level: str = "info") -> None:
    """Load every model and genome once, then run uvicorn until interrupted."""
    import uvicorn

    from nucfm.checkpoint import registry
    from nucfm.serve.resources import load_genome_slot, load_model_slot

    names = list(models) or [registry.DEFAULTS[k] for k in ("ss", "contact", "rna", "dna") if k in registry.DEFAULTS]
    slots = []
    for name in dict.fromkeys(names):
        log.info("loading model %s", name)
        slots.append(load_model_slot(name, device))
    genome_slots = [load_genome_slot(spec) for spec in genomes]
    if len({g.name for g in genome_slots}) < len(genome_slots):
        raise InputError("two --genome options have the same NAME")
    if genome_slots and not any(s.kind == "dna" for s in slots):
        log.warning("genomes are configured but no DNA model is loaded: variant effects and probabilities are off")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach port %d can run the models. On a shared machine keep "
                    "127.0.0.1 and put a reverse proxy with authentication in front (see the README)", host, port)
    app = create_app(slots, genome_slots, limits)
    log.info("nucfm serve: http://%s:%d/ (API docs at /docs)", host if ":" not in host else f"[{host}]", port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=5)
