"""emohrnet: EmoHRNet speech emotion recognition, trained with Ray Train and tuned with Ray Tune.

Subpackages and modules:

- :mod:`emohrnet.corpora` -- corpus readers (utterance records, speakers, class lists, folds).
- :mod:`emohrnet.audio` -- decoding audio files to 16 kHz mono waveforms.
- :mod:`emohrnet.frontend` -- the front ends by kind: normalized log-mel (EmoHRNet) and MFCC (the 1D CNN).
- :mod:`emohrnet.shards` -- precomputing a corpus into WebDataset shards; :mod:`emohrnet.manifest` their manifest.
- :mod:`emohrnet.augment` -- SpecAugment masks and random time shifts.
- :mod:`emohrnet.splits` -- speaker-independent folds and the random utterance split.
- :mod:`emohrnet.models` -- EmoHRNet, the 1D CNN with attention and the model registry.
- :mod:`emohrnet.data` -- shards to examples and training batches; :mod:`emohrnet.evaluation` evaluation batches.
- :mod:`emohrnet.metrics` -- UA, WA, macro-F1 and confusion matrices.
- :mod:`emohrnet.experiment_config` -- an experiment's settings as one typed tree (saved as ``config.json``).
- :mod:`emohrnet.train_config` -- one training run's settings; :mod:`emohrnet.train` the Ray Train
  ``train_loop_per_worker``.
- :mod:`emohrnet.predict`, :mod:`emohrnet.export` -- a trained checkpoint on new audio; ONNX and TorchScript.
"""

__version__ = "0.1.0"
