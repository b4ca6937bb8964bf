"""What keeps DDP replicas identical beyond their gradients: BatchNorm running statistics.

DDP averages gradients, so every rank holds the same weights after each step, but BatchNorm's
running mean and variance are buffers that each rank updates from its own batches. By default DDP
broadcasts rank 0's buffers at every forward pass, so the statistics used in evaluation and saved
in checkpoints come from rank 0's data alone. emohrnet instead:

- on CUDA (NCCL), converts BatchNorm to ``torch.nn.SyncBatchNorm``: batch statistics over the
  global batch, identical running statistics on every rank;
- on CPU (gloo, where ``SyncBatchNorm`` does not run), lets each rank update its own running
  statistics (DDP ``broadcast_buffers=False``) and averages them over the ranks
  (:func:`average_batchnorm_stats`) before every evaluation and every checkpoint. The running mean
  is an exponential moving average, which is linear, so the average of the ranks' running means is
  the moving average of the global batch means (equal per-rank batches); the averaged running
  variance leaves out the spread of the ranks' batch means, which is small when every rank's
  batches are drawn from the whole training part (:func:`emohrnet.data.loading.rank_order`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm


def world_size() -> int:
    """The number of processes in the default process group (1 when none is up)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def sum_over_workers(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over all ranks (``all_reduce``), returned on ``t``'s device; ``t`` itself without a
    process group of several ranks. The collective runs where the backend needs it: on the device
    for NCCL, on the CPU for gloo."""
    return _reduce_over_workers(t, dist.ReduceOp.SUM)


def _reduce_over_workers(t: torch.Tensor, op: dist.ReduceOp) -> torch.Tensor:
    """``t`` reduced with ``op`` over all ranks (see :func:`sum_over_workers`)."""
    if world_size() == 1:
        return t
    backend_device = t.device if dist.get_backend() == "nccl" else torch.device("cpu")
    packed = t.to(backend_device, copy=True)
    dist.all_reduce(packed, op=op)
    return packed.to(t.device)


def batchnorm_buffers(model: torch.nn.Module) -> list[torch.Tensor]:
    """The running means and variances of every BatchNorm layer of ``model``, in module order."""
    return [b for m in model.modules() if isinstance(m, _BatchNorm)
            for b in (m.running_mean, m.running_var) if b is not None]


def average_batchnorm_stats(model: torch.nn.Module) -> None:
    """Replace every rank's BatchNorm running statistics by their mean over the ranks, in place.

    A no-op without a process group of several ranks. Works with gloo (CPU) and NCCL; one
    ``all_reduce`` of all buffers packed together (float64, so the mean is exact to float32).

    Args:
        model: the unwrapped model (the same on every rank, DDP's ``module``).
    """
    world = world_size()
    buffers = batchnorm_buffers(model)
    if world == 1 or not buffers:
        return
    packed = sum_over_workers(torch.cat([b.detach().reshape(-1).double() for b in buffers])) / world
    offset = 0
    with torch.no_grad():
        for b in buffers:
            n = b.numel()
            b.copy_(packed[offset:offset + n].reshape(b.shape).to(b.device, b.dtype))
            offset += n


def check_replicas_agree(model: torch.nn.Module, rtol: float = 1e-6) -> None:
    """Check that every rank holds the same weights, as DDP promises (the same initial weights,
    the same averaged gradients, the same optimizer step); a no-op without several ranks.

    Compares three float64 fingerprints of the parameters (their sum, sum of squares and a
    position-weighted sum) across the ranks with one ``all_reduce`` (MAX over the fingerprints and
    their negations). Called before every evaluation and checkpoint, so a rank that trained alone
    (gradients not synchronised) stops the run instead of reporting one rank's model as the run's.

    Raises:
        RuntimeError: the ranks' fingerprints differ by more than ``rtol`` (relative); the message
            names them.
    """
    if world_size() == 1:
        return
    params = [p.detach() for p in model.parameters()]
    total, squares, weighted = (torch.zeros((), dtype=torch.float64, device=params[0].device) for _ in range(3))
    with torch.no_grad():
        for p in params:
            flat = p.reshape(-1).double()
            total += flat.sum()
            squares += (flat * flat).sum()
            weighted += (flat * torch.linspace(1.0, 2.0, flat.numel(), dtype=torch.float64, device=flat.device)).sum()
    mine = torch.stack([total, squares, weighted])
    both = _reduce_over_workers(torch.cat([mine, -mine]), dist.ReduceOp.MAX).cpu()
    high, low = both[:3], -both[3:]
    if ((high - low).abs() > rtol * high.abs().clamp_min(1.0)).any():
        raise RuntimeError(f"DDP replicas diverged: the ranks' weight fingerprints range over {low.tolist()} to "
                           f"{high.tolist()}; gradients are not being synchronised (is the model wrapped in "
                           "DistributedDataParallel?)")


def mean_over_workers(total: float, count: int, device: torch.device) -> float:
    """``sum(total) / sum(count)`` over all ranks (``total / count`` without a process group)."""
    if world_size() > 1:
        t = sum_over_workers(torch.tensor([total, float(count)], dtype=torch.float64, device=device))
        total, count = float(t[0]), int(t[1])
    return total / max(count, 1)
