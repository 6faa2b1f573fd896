"""Data-parallel training under torchrun: who this process is, and the few collectives the engine needs.

`torchrun --nproc_per_node=N -m zoo.cli train ...` starts N copies of the same command with RANK,
LOCAL_RANK and WORLD_SIZE in their environment. `setup()` reads them, joins the process group (NCCL on
CUDA, gloo on the CPU) and puts each rank on its own GPU (cuda:LOCAL_RANK). A plain `zoo train` gets a
`Distributed` with world_size 1 whose collectives are no-ops, so the engine has one code path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from zoo.core.errors import ZooError

T = TypeVar("T")
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class Distributed:
    rank: int = 0  # global rank of this process
    local_rank: int = 0  # rank on this machine: the GPU index it trains on
    world_size: int = 1  # processes taking part
    backend: str | None = None  # "nccl" or "gloo"; None when training in one process
    owns_group: bool = False  # this module created the process group and must destroy it
    device: torch.device | None = None  # the device collectives run on

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder and prints; the others only train."""
        return self.rank == 0

    def barrier(self) -> None:
        if not self.enabled:
            return
        if self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` (any picklable object) on every rank."""
        if not self.enabled:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def decide(self, choose: Callable[[], T]) -> T:
        """Rank 0's `choose()` on every rank; a ZooError it raises is raised on every rank alike."""
        outcome: T | ZooError | None = None
        if self.is_main:
            try:
                outcome = choose()
            except ZooError as error:
                outcome = error
        outcome = self.broadcast(outcome)
        if isinstance(outcome, ZooError):
            raise outcome
        return outcome

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over all ranks, in place; returns it."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def setup(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the torchrun process group if this process was started by torchrun; return it and the device.

    Under torchrun a CUDA device becomes cuda:LOCAL_RANK (one GPU per process). A process group that the
    caller initialised already is used as it is and left open.
    """
    if not launched_by_torchrun() and not (dist.is_available() and dist.is_initialized()):
        return Distributed(), device
    if not dist.is_available():
        raise ZooError("this PyTorch build has no torch.distributed; train without torchrun")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ZooError(
                f"LOCAL_RANK {local_rank} has no GPU (this machine has {torch.cuda.device_count()}); "
                "start at most one process per GPU (--nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        backend = "nccl" if device.type == "cuda" else "gloo"
        options = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, **options)
    backend = dist.get_backend()
    comm_device = device if backend == "nccl" else torch.device("cpu")
    context = Distributed(
        rank=dist.get_rank(),
        local_rank=local_rank,
        world_size=dist.get_world_size(),
        backend=backend,
        owns_group=owns_group,
        device=comm_device,
    )
    return context, device


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (seed, purpose, epoch, rank): independent streams, reproducible."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
