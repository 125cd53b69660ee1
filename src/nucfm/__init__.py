"""nucfm: nucleotide foundation models (RNA-FM, GPN) for RNA and DNA.

>>> import nucfm
>>> model = nucfm.load_model("rna-fm")            # doctest: +SKIP
>>> vectors = model.embed(["GGGAAACUUCGGUUUCCC"], pool="mean")  # doctest: +SKIP
"""

from nucfm.checkpoint import load_model, save_model
from nucfm.io.embeddings import open_embeddings

__version__ = "0.1.0"
__all__ = ["load_model", "save_model", "open_embeddings", "__version__"]
