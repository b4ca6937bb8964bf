"""emohrnet: EmoHRNet speech emotion recognition, trained with Ray Train and tuned with Ray Tune.

Subpackages, by concern (each one's docstring lists its modules):

- :mod:`emohrnet.corpora` -- corpus readers (utterances, speakers, sessions, class lists, folds).
- :mod:`emohrnet.frontend` -- the front ends: normalized log-mel (EmoHRNet) and MFCC (the 1D CNN).
- :mod:`emohrnet.shards` -- a corpus precomputed once into WebDataset shards, and their manifest.
- :mod:`emohrnet.data` -- splits (speaker folds), shards to batches, SpecAugment and waveform copies.
- :mod:`emohrnet.models` -- EmoHRNet, the 1D CNN with attention, and the model registry.
- :mod:`emohrnet.training` -- one Ray Train run: the loop, its config, checkpoints, DDP, the loss.
- :mod:`emohrnet.inference` -- scoring (UA, WA, ``evaluate``), prediction on new audio, export.
- :mod:`emohrnet.config` -- an experiment's settings as one typed tree (``config.json``).
- :mod:`emohrnet.io` -- local and object-store folders, atomic writes, ``$EMOHRNET_HOME``, audio decoding.

``python -m emohrnet.predict`` and ``python -m emohrnet.export`` are the commands of
:mod:`emohrnet.inference.predict` and :mod:`emohrnet.inference.export`. The modules' names before
this layout still import (:mod:`emohrnet._moved`), so older experiments resume.
"""

from emohrnet import _moved

_moved.install()

__version__ = "0.1.0"
