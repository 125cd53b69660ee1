"""Write ``examples/models/mrna-fm-tiny-random``: a random-weight stand-in with mRNA-FM's architecture
family and codon vocabulary (2 layers, 32 dim instead of 12 and 1280), so that the mRNA-FM examples
of the docs run without the 1.2 GB official weights. Its outputs mean nothing.

    python scripts/make_mrnafm_standin.py
"""

from pathlib import Path

import torch

from nucfm.checkpoint import save_model
from nucfm.models import Transformer, TransformerConfig

OUT = Path(__file__).resolve().parents[1] / "examples" / "models" / "mrna-fm-tiny-random"

if __name__ == "__main__":
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(alphabet="mrna-fm", num_layers=2, hidden_size=32, num_heads=4, ffn_size=64,
                                          max_len=1022))
    about = "random weights with mRNA-FM's codon vocabulary (2 layers, 32 dim): a stand-in for examples; meaningless"
    save_model(model, OUT, metadata={"kind": "codon", "description": about})
    print(OUT)
