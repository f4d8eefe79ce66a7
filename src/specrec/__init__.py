"""specrec: how the training loss shapes the singular-value spectrum of collaborative-filtering embeddings."""

__version__ = "0.1.0"
