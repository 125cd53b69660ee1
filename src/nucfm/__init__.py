"""nucfm: nucleotide foundation models (RNA-FM, GPN) for RNA and DNA.

>>> import nucfm
>>> model = nucfm.load_model("rna-fm")            # doctest: +SKIP
>>> vectors = model.embed(["GGGAAACUUCGGUUUCCC"], pool="mean")  # doctest: +SKIP
"""

__version__ = "0.1.0"
__all__ = ["load_model", "save_model", "open_embeddings", "__version__"]


def __getattr__(name: str):
    # torch and the checkpoint code load on first use, so `nucfm --help` starts in a blink
    if name in ("load_model", "save_model"):
        from nucfm import checkpoint

        return getattr(checkpoint, name)
    if name == "open_embeddings":
        from nucfm.io.embeddings import open_embeddings

        return open_embeddings
    raise AttributeError(f"module 'nucfm' has no attribute {name!r}")
