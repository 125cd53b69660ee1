"""``serve``: the local web server."""

from __future__ import annotations

from nucfm.cli.common import (
    add_common,
    check_input,
    check_model_name,
    positive_float,
    positive_int,
    resolve_device,
)
from nucfm.errors import InputError

# ---- serve --------------------------------------------------------------------------------------
SERVE_LIMITS = {"max_body_mb": (float, "request body in MiB (default 16)"),
                "max_records": (int, "FASTA records per request (default 100)"),
                "max_fold_len": (int, "letters per folded sequence; memory grows as L^2 (default 2000)"),
                "max_fold_residues": (int, "letters per fold request (default 20000)"),
                "max_embed_len": (int, "letters per embedded sequence (default 20000)"),
                "max_embed_residues": (int, "letters per embed request (default 200000)"),
                "max_variants": (int, "variant rows per request (default 5000)"),
                "max_region": (int, "positions per probs request (default 2000)"),
                "queue": (int, "jobs queued or running; more get 429 + Retry-After (default 16)"),
                "workers": (int, "compute threads (default 2)"),
                "job_timeout": (float, "seconds a job may run (default 300)"),
                "keep_results": (int, "finished jobs kept for download (default 64)"),
                "result_ttl": (float, "seconds a finished job stays downloadable (default 3600)")}


def add_serve(sub):
    p = sub.add_parser("serve", help="a local web server and page: fold, embed, variant effects, probabilities",
                       description="Load each model (and genome) once and serve a JSON API (docs at /docs) and a "
                       "page at http://HOST:PORT/. Limits: the options below or NUCFM_SERVE_<OPTION> environment "
                       "variables (e.g. NUCFM_SERVE_MAX_FOLD_LEN=500). Needs `pip install 'nucfm[serve]'`.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("-m", "--model", action="append", default=None, metavar="NAME",
                   help="model to serve, name or path (repeatable; default: the shipped SS, contact, RNA and DNA "
                        "models)")
    p.add_argument("--genome", action="append", default=[], metavar="NAME=PATH",
                   help="reference FASTA clients may score variants against, under NAME (repeatable)")
    add_common(p, device=True, precision=False)  # autocast is per thread; the server does not take it
    for key, (kind, text) in SERVE_LIMITS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=positive_int if kind is int else positive_float,
                       default=None, dest=key, help=text)
    p.set_defaults(run=run_serve)



def run_serve(args):
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: form uploads)
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise InputError(f"nucfm serve needs FastAPI, uvicorn and python-multipart ({e.name} is missing): "
                         "pip install 'nucfm[serve]'") from None
    from nucfm.serve.resources import parse_genome_spec
    from nucfm.serve.settings import limits_from

    limits = limits_from({k: getattr(args, k) for k in SERVE_LIMITS})
    for spec in args.genome:
        check_input(parse_genome_spec(spec)[1], "genome")
    for name in args.model or []:
        check_model_name(name)
    device = resolve_device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from nucfm.serve.app import serve

    serve(args.model or [], args.genome, host=args.host, port=args.port, limits=limits, device=device,
          log_level="debug" if args.verbose else "info")
