"""stcore: spatial domains from spatial transcriptomics with a sparse graph contrastive autoencoder."""
from .errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
