"""Precompute corpora into WebDataset shards of log-mel spectrograms (``python -m shards.build``)."""
