"""An experiment's settings.

- :mod:`emohrnet.config.experiment` -- :class:`~emohrnet.config.experiment.ExperimentConfig`, one typed
  tree of sections (data, model, optimizer, augmentation, protocol, resources, search), saved as
  ``config.json``.
- :mod:`emohrnet.config.argtypes` -- ``argparse`` types that refuse an out-of-range value in one line.
- :mod:`emohrnet.config.registry` -- the one registration style of what a config names: models,
  corpora, front ends.
"""
