"""One set of BatchNorm statistics across DDP ranks (gloo, two real processes)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fixtures import free_port
from torch.nn.parallel import DistributedDataParallel

from emohrnet.models import build_model
from emohrnet.training.distributed import average_batchnorm_stats, batchnorm_buffers, check_replicas_agree


def _rank(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        core = build_model("emohrnet", 3, widths=[4, 8, 16, 32], stem_channels=8, blocks_per_branch=1,
                           modules=[1, 1, 1, 1])
        model = DistributedDataParallel(core, broadcast_buffers=False)  # as the training loop wraps it
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(100 + rank)
        for _ in range(3):  # an "epoch": every rank its own batches, offset so their statistics differ
            x = torch.randn(4, 1, 16, 24, generator=g) * (1 + rank) + rank
            loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        before = [b.clone() for b in batchnorm_buffers(core)]
        average_batchnorm_stats(core)
        after = batchnorm_buffers(core)
        weights = [p.detach().clone() for p in core.parameters()]
        check_replicas_agree(core)  # synchronised gradients: no error
        with torch.no_grad():
            next(core.parameters()).add_(1e-3 * rank)  # rank 1 drifts, as without gradient synchronisation
        try:
            check_replicas_agree(core)
            diverged = ""
        except RuntimeError as err:
            diverged = str(err)
        gathered = [None] * world
        dist.all_gather_object(gathered, {"before": before, "after": [b.clone() for b in after],
                                          "weights": weights, "diverged": diverged})
        if rank == 0:
            torch.save(gathered, out)
    finally:
        dist.destroy_process_group()


def test_two_ranks_hold_identical_batchnorm_buffers_after_an_epoch(tmp_path):
    out = str(tmp_path / "ranks.pt")
    mp.spawn(_rank, args=(2, free_port(), out), nprocs=2, join=True)
    r0, r1 = torch.load(out, weights_only=False)
    assert len(r0["after"]) > 10  # every BatchNorm layer's running mean and variance
    # gradients are synchronised: the weights agree; the running statistics did not, before averaging
    assert all(torch.equal(a, b) for a, b in zip(r0["weights"], r1["weights"], strict=True))
    # a rank whose weights drift is caught on every rank
    assert r0["diverged"].startswith("DDP replicas diverged") and r1["diverged"] == r0["diverged"]
    assert any(not torch.allclose(a, b) for a, b in zip(r0["before"], r1["before"], strict=True))
    for a, b, x, y in zip(r0["after"], r1["after"], r0["before"], r1["before"], strict=True):
        assert torch.equal(a, b)  # identical on both ranks
        torch.testing.assert_close(a, (x.double() + y.double()).div(2).float())  # and their mean


def test_average_is_a_no_op_without_a_process_group():
    core = build_model("emohrnet", 3, widths=[4, 8, 16, 32], stem_channels=8, blocks_per_branch=1,
                       modules=[1, 1, 1, 1])
    for b in batchnorm_buffers(core):
        b.uniform_()
    before = [b.clone() for b in batchnorm_buffers(core)]
    average_batchnorm_stats(core)
    assert all(torch.equal(a, b) for a, b in zip(before, batchnorm_buffers(core), strict=True))
