"""Collection rules for the whole checkout (the tests' own settings are tests/conftest.py)."""

import importlib.util

# `python -m pytest` also collects the docstrings of every module under src/nucfm; the server's
# app module imports FastAPI, an optional extra (nucfm[serve]): without it, that module is skipped.
collect_ignore = []
if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("multipart") is None:
    collect_ignore.append("src/nucfm/serve/app.py")
