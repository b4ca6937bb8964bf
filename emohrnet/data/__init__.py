"""From shards to batches: splits, batching and augmentation of training data.

- :mod:`emohrnet.data.splits` -- speaker-independent folds and the paper's random utterance split.
- :mod:`emohrnet.data.loading` -- reading shards into training batches (``DistributedSampler`` semantics
  over DDP ranks), shape ``(batch, 1, n_mels, frames)`` for log-mel, and evaluation examples.
- :mod:`emohrnet.data.augment` -- SpecAugment frequency/time masks and random time shifts (EmoHRNet, sec. 3.4).
- :mod:`emohrnet.data.wave_augment` -- speed, pitch and noise copies of training waveforms, made when
  shards are built (Lee & Nadeem 2025; speed perturbation of the log-mel shards, issue 23).
"""
