"""A trained model at work: scoring, prediction on new audio, export.

- :mod:`emohrnet.inference.metrics` -- UA, WA, macro-F1 and confusion matrices.
- :mod:`emohrnet.inference.evaluation` -- :func:`~emohrnet.inference.evaluation.evaluate`, the one
  scoring path of validation, test, the search's final scoring and prediction on shards.
- :mod:`emohrnet.inference.predict` -- emotions of audio files from a checkpoint
  (``python -m emohrnet.predict``); :mod:`emohrnet.inference.prediction_output` its rows and formats.
- :mod:`emohrnet.inference.export` -- ONNX and TorchScript (``python -m emohrnet.export``).
"""
