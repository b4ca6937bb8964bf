"""One training run: the Ray Train loop and what it needs.

- :mod:`emohrnet.training.loop` -- :func:`~emohrnet.training.loop.train_loop_per_worker`, the
  ``TorchTrainer`` loop (DDP over workers; gloo on CPU, NCCL on GPU).
- :mod:`emohrnet.training.config` -- :class:`~emohrnet.training.config.TrainConfig`, one run's settings.
- :mod:`emohrnet.training.checkpoint` -- ``checkpoint.pt``: weights, config, classes, epoch.
- :mod:`emohrnet.training.distributed` -- keeping BatchNorm statistics identical across ranks.
- :mod:`emohrnet.training.mixup` -- the loss with mixup and label smoothing.
- :mod:`emohrnet.training.memory` -- a worker's GPU memory, estimated before anything runs.
"""
