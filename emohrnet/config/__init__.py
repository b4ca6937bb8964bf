"""An experiment's settings.

- :mod:`emohrnet.config.experiment` -- :class:`~emohrnet.config.experiment.ExperimentConfig`, one typed
  tree of sections (data, model, optimizer, augmentation, protocol, resources; a search adds its own,
  ``tune.search_config``), saved as ``config.json``, and :data:`~emohrnet.config.experiment.PARAMS`, the one
  table of flat keys.
- :mod:`emohrnet.config.argtypes` -- ``argparse`` types that refuse an out-of-range value in one line.
- :mod:`emohrnet.config.registry` -- the one registration style of what a config names: models,
  corpora, front ends.
"""
