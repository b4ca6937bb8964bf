"""The torch process group of a trial's Ray Train run, with its rendezvous bound to one address.

Ray Train 2.60 (``ray.train.torch.config._TorchBackend.on_start``) starts DDP with
``init_method="env://"``: rank 0's ``torch.distributed.TCPStore`` server, the rendezvous every rank
connects to, binds every interface (``*:PORT``, IPv4 and IPv6) whatever ``MASTER_ADDR`` says;
torch 2.11 binds the wildcard address with and without libuv. :class:`BoundTorchConfig` sets the
process group up itself: rank 0 binds a socket to its node's address (127.0.0.1 under a local
search's Ray, :func:`tune.ray_start.loopback_only`), hands it to the ``TCPStore`` server
(``master_listen_fd``) and every rank joins through ``init_process_group(store=...)``. On a
loopback node the collectives' own sockets stay there too: gloo's and NCCL's are put on the
loopback interface (``GLOO_SOCKET_IFNAME``, ``NCCL_SOCKET_IFNAME``, unless already set).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from ray.train._internal.worker_group import WorkerGroup as V1WorkerGroup
from ray.train.torch import TorchConfig
from ray.train.torch.config import _set_torch_distributed_env_vars, _TorchBackend

_STORE = None
"""Rank 0's TCPStore server between :func:`_serve_store` and :func:`_join` (one worker process)."""


@dataclass
class BoundTorchConfig(TorchConfig):
    """Ray Train's ``TorchConfig`` whose rendezvous listens on the node's own address only (see the
    module's docstring); ``backend`` and ``timeout_s`` as there (``init_method`` is not used)."""

    @property
    def backend_cls(self):
        """The backend Ray Train instantiates on the run's controller."""
        return _BoundTorchBackend


class _BoundTorchBackend(_TorchBackend):
    def on_start(self, worker_group, backend_config: TorchConfig) -> None:
        import ray

        n = len(worker_group)
        backend = backend_config.backend or ("nccl" if worker_group.get_resources_per_worker().get("GPU") else "gloo")
        addr, port = worker_group.execute_single(0, _serve_store, world_size=n, timeout_s=backend_config.timeout_s)
        if not isinstance(worker_group, V1WorkerGroup):  # V1 sets them in on_training_start, as Ray Train does
            worker_group.execute(_set_torch_distributed_env_vars)
        ray.get([worker_group.execute_single_async(i, _join, backend=backend, world_rank=i, world_size=n, addr=addr,
                                                   port=port, timeout_s=backend_config.timeout_s)
                 for i in range(n)])


def loopback_interface() -> str | None:
    """The name of the network interface holding 127.0.0.1 (``lo`` on Linux), or ``None``."""
    import psutil

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == "127.0.0.1" for a in addrs):
            return name
    return None


def _serve_store(world_size: int, timeout_s: float) -> tuple[str, int]:
    """On rank 0: start the TCPStore server on a socket bound to this node's address; return it."""
    global _STORE
    import ray
    import torch.distributed as dist

    addr = ray.util.get_node_ip_address()
    family = socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((addr, 0))
    sock.listen(max(128, world_size))
    port = sock.getsockname()[1]
    _STORE = dist.TCPStore(addr, port, world_size, True, timedelta(seconds=timeout_s), wait_for_workers=False,
                           master_listen_fd=sock.detach())
    return addr, port


def _join(backend: str, world_rank: int, world_size: int, addr: str, port: int, timeout_s: float) -> None:
    """On every rank: join the process group through rank 0's store at ``addr:port``."""
    global _STORE
    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = addr, str(port)
    if ipaddress.ip_address(addr).is_loopback:
        lo = loopback_interface()
        if lo:
            os.environ.setdefault("GLOO_SOCKET_IFNAME", lo)
            os.environ.setdefault("NCCL_SOCKET_IFNAME", lo)
    if backend == "nccl" and "TORCH_NCCL_BLOCKING_WAIT" not in os.environ:
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")  # as Ray Train does
    timeout = timedelta(seconds=timeout_s)
    store = _STORE if world_rank == 0 else dist.TCPStore(addr, port, world_size, False, timeout)
    dist.init_process_group(backend=backend, store=store, rank=world_rank, world_size=world_size, timeout=timeout)
    _STORE = None  # the process group holds it now
