"""``nucfm serve``: a local web server over the tasks (fold, embed, variant effects, position
probabilities) with a JSON API and one static page.

* :mod:`nucfm.serve.settings` — the limits (options and ``NUCFM_SERVE_*`` environment variables);
* :mod:`nucfm.serve.capabilities` — what the server can do, one entry per capability;
* :mod:`nucfm.serve.jobs` — the bounded job queue, worker threads, per-job deadlines, results;
* :mod:`nucfm.serve.work` — the job bodies: request text in, library calls, results out;
* :mod:`nucfm.serve.app` — the FastAPI application (routes, body limit, error handlers).

FastAPI and uvicorn are an optional extra (``pip install 'nucfm[serve]'``); only
:mod:`nucfm.serve.app` imports them.
"""
