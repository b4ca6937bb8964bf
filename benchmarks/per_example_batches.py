"""The per-example training batcher: the oracle the tests (and the data-path benchmark) compare
:class:`emohrnet.data.loading.DeviceBatches` with (the library's one training batcher). Written the plain way:
for each position of the epoch's order (:func:`emohrnet.data.loading.rank_order`), pick the example or one of
its variants, place it in its segment with :func:`emohrnet.data.augment.random_segment`, and stack."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from emohrnet.data.augment import random_segment
from emohrnet.data.loading import Example, draw_seed, rank_order


class PerExampleBatches:
    """Batches of ``(batch, 1, n_features, segment_frames)`` float32 and ``(batch,)`` labels, one
    example at a time on the CPU; the same order as :class:`~emohrnet.data.loading.DeviceBatches` for the same
    ``(seed, epoch, rank, world)``, its own draws of offsets and variants (same distributions)."""

    def __init__(self, examples: list[Example], batch_size: int, steps: int, segment_frames: int,
                 seed: int = 0, rank: int = 0, time_shift: bool = True, variant_prob: float = 0.0,
                 world: int = 1) -> None:
        if not examples:
            raise ValueError("this worker has no training examples; the training part is empty")
        self.examples, self.batch_size, self.steps, self.segment_frames = examples, batch_size, steps, segment_frames
        self.seed, self.rank, self.world = seed, rank, world
        self.time_shift, self.variant_prob = time_shift, variant_prob

    def order(self, epoch: int) -> torch.Tensor:
        return rank_order(len(self.examples), self.batch_size, self.steps, self.seed, epoch, self.rank, self.world)

    def _features(self, example: Example, g: torch.Generator) -> torch.Tensor:
        if example.variants and self.variant_prob > 0 and float(torch.rand((), generator=g)) < self.variant_prob:
            return example.variants[int(torch.randint(len(example.variants), (), generator=g))]
        return example.features

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.order(epoch)
        g = torch.Generator().manual_seed(draw_seed(self.seed, epoch, self.rank))
        for step in range(self.steps):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size].tolist()
            x = torch.stack([random_segment(self._features(self.examples[i], g), self.segment_frames, g,
                                            self.time_shift) for i in idx]).unsqueeze(1).float()
            yield x, torch.tensor([self.examples[i].label for i in idx], dtype=torch.long)
