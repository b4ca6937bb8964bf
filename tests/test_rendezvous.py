"""A trial's DDP rendezvous listens on its node's address only, not on every interface: torch's
TCPStore binds ``*:PORT`` (IPv4 and IPv6) when Ray Train sets the process group up with ``env://``
(:mod:`tune.rendezvous`). Here one rank in this process, without Ray; a local run's workers, read
from outside while their process group is up, are in test_local_ray.py."""

from __future__ import annotations

import os

import psutil
import pytest


def _listening() -> list[tuple[str, int]]:
    return [(c.laddr.ip, c.laddr.port) for c in psutil.Process().net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN]


@pytest.mark.parametrize("node", ["loopback", "interface"])
def test_the_store_listens_on_the_node_address_only(monkeypatch, node):
    """A local search's node address is 127.0.0.1 (its store and gloo stay on the loopback interface);
    a cluster node's is its interface's address (the store binds that one, not every interface)."""
    import ray.util
    import torch
    import torch.distributed as dist

    from tune import rendezvous

    addr = "127.0.0.1" if node == "loopback" else ray.util.get_node_ip_address()
    for name in ("MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: addr)
    before = set(_listening())
    served, port = rendezvous._serve_store(world_size=1, timeout_s=30)
    rendezvous._join("gloo", world_rank=0, world_size=1, addr=served, port=port, timeout_s=30)
    try:
        total = torch.ones(1)
        dist.all_reduce(total)  # a working process group
        opened = set(_listening()) - before
    finally:
        dist.destroy_process_group()
    assert served == addr and (addr, port) in opened
    assert not [s for s in opened if s[0] in ("0.0.0.0", "::", "")], opened
    if node == "loopback":
        lo = rendezvous.loopback_interface()
        assert lo is not None and os.environ["GLOO_SOCKET_IFNAME"] == os.environ["NCCL_SOCKET_IFNAME"] == lo
        assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip, _ in opened), opened
    else:
        assert "GLOO_SOCKET_IFNAME" not in os.environ  # a cluster's gloo keeps its own interface
