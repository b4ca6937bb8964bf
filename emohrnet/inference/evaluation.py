"""Scoring, apart from training: :func:`evaluate` scores whole utterances (loss, UA, WA, confusion matrix)
for the training loop's validation and test passes, prediction's scoring of shards, the search's final
scoring of the chosen trial and the cross-fold runs, in evaluation batches (:func:`eval_batches`, kept on
the device as an :class:`EvalSet`): whole utterances, padded only to a length bucket, so a score does not
depend on which utterances share its batch or how the set is split between workers."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from emohrnet.data.loading import Example
from emohrnet.inference.metrics import unweighted_accuracy, weighted_accuracy
from emohrnet.training.distributed import sum_over_workers, world_size

EVAL_BUCKET = 8
"""Evaluation pads each utterance to the next multiple of this many frames (:func:`eval_batches`).
Of 8, 16 and 32 frames, 8 changed the fewest predictions against exact-length batches on real
RAVDESS (``benchmarks/eval_buckets.py``) at about the same speed on a CPU."""


def eval_batches(examples: Sequence[Example], max_batch: int = 32, bucket: int = EVAL_BUCKET
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]]:
    """Whole-utterance evaluation batches in length buckets.

    Each utterance is zero-padded at the end of the time axis to the next multiple of ``bucket``
    frames, and utterances of the same padded length share batches of up to ``max_batch`` (sorted
    by length, then key). Few distinct shapes (the cuDNN plan cache and the CPU kernels stay warm)
    and full batches, instead of one batch per distinct length. An utterance's padding depends on
    its own length only, never on which utterances share its batch, so its scores do not depend on
    how the set is split between workers. The models pool over each utterance's own frames
    (``lengths``); the padding still reaches the last few valid frames through the convolutions'
    receptive fields, so scores can differ slightly from exact-length evaluation (``bucket=1``:
    only utterances of equal length share a batch, no padding; ``benchmarks/eval_buckets.py``
    measures both).

    Args:
        examples: the utterances, ``features`` ``(n_features, frames)`` each.
        max_batch: most utterances per batch.
        bucket: padded lengths are multiples of this many frames (>= 1).

    Yields:
        ``(x, y, lengths, keys)``: ``x`` ``(batch, 1, n_features, frames)`` float32, ``y`` ``(batch,)``
        int64, ``lengths`` ``(batch,)`` int64 valid frames of each utterance.

    Raises:
        ValueError: ``max_batch`` or ``bucket`` below 1.
    """
    if max_batch < 1 or bucket < 1:
        raise ValueError(f"need max_batch >= 1 and bucket >= 1; got {max_batch}, {bucket}")
    groups: dict[int, list[Example]] = {}
    for e in sorted(examples, key=lambda e: (e.features.shape[-1], e.key)):
        groups.setdefault(-(-e.features.shape[-1] // bucket) * bucket, []).append(e)
    for frames, group in sorted(groups.items()):
        for i in range(0, len(group), max_batch):
            part = group[i:i + max_batch]
            x = torch.zeros(len(part), 1, part[0].features.shape[0], frames)
            for j, e in enumerate(part):
                x[j, 0, :, : e.features.shape[-1]] = e.features
            yield (x, torch.tensor([e.label for e in part], dtype=torch.long),
                   torch.tensor([e.features.shape[-1] for e in part], dtype=torch.long), [e.key for e in part])


class EvalSet:
    """An evaluation set held as ready batches (:func:`eval_batches`) on the device, built once and
    scored every epoch by :func:`emohrnet.inference.evaluation.evaluate` without a host copy per batch.

    Args:
        examples: the utterances.
        device: where the batches live (the model's device).
        max_batch, bucket: see :func:`eval_batches`.

    Attributes:
        batches: ``[(x, y, lengths)]`` on ``device`` (shapes as in :func:`eval_batches`).
        n: number of utterances.
    """

    def __init__(self, examples: Sequence[Example], device: torch.device | str = "cpu", max_batch: int = 32,
                 bucket: int = EVAL_BUCKET) -> None:
        device = torch.device(device)
        self.batches = [(x.to(device), y.to(device), n.to(device))
                        for x, y, n, _ in eval_batches(examples, max_batch, bucket)]
        self.n = len(examples)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, examples: EvalSet | Sequence[Example], num_classes: int, device: torch.device,
             max_batch: int = 32, reduce: bool = True, amp: bool = False, channels_last: bool = False
             ) -> dict[str, Any]:
    """Score whole utterances, in length buckets (:func:`eval_batches`).

    The batches stay on ``device``; the loss and the confusion matrix are summed there and read
    once per call (one device-to-host sync per pass, not one per batch).

    Args:
        model: the (unwrapped) model, called as ``model(x, lengths)``; put in eval mode here.
        examples: this worker's evaluation utterances, or an :class:`EvalSet` of them
            already on ``device`` (what the training loop keeps for its validation set).
        num_classes: C.
        device: where the model is.
        max_batch: most utterances per forward pass (when ``examples`` is a list).
        reduce: sum confusion matrices and losses over all workers (``all_reduce``) when a
            process group is up, so every worker gets the figures of the whole set.
        amp: forward passes under bf16 autocast (logits, loss and metrics are computed in float32).
        channels_last: feed batches in ``torch.channels_last`` memory format.

    Returns:
        ``{"loss", "ua", "wa", "n", "confusion"}`` with ``confusion`` a ``(C, C)`` int64 CPU tensor.
    """
    model.eval()
    data = examples if isinstance(examples, EvalSet) else EvalSet(examples, device, max_batch)
    counts = torch.zeros(num_classes * num_classes, dtype=torch.float64, device=device)
    loss_sum = torch.zeros(1, dtype=torch.float64, device=device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for x, y, lengths in data.batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x.contiguous(memory_format=fmt), lengths)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        counts += torch.bincount(y * num_classes + logits.argmax(dim=1), minlength=num_classes ** 2).double()
    packed = torch.cat([counts, loss_sum])
    if reduce and world_size() > 1:
        packed = sum_over_workers(packed)
    packed = packed.cpu()  # the one sync of the pass
    cm = packed[:-1].round().long().reshape(num_classes, num_classes)
    n = int(cm.sum())
    return {"loss": float(packed[-1]) / n if n else math.nan, "ua": unweighted_accuracy(cm),
            "wa": weighted_accuracy(cm), "n": n, "confusion": cm}
