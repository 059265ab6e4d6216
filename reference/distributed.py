"""``torchrun --nproc_per_node=N -m reference --ddp``: the chapter's run on N processes.

PyTorch's own distributed data parallel (``torch.nn.parallel.DistributedDataParallel``),
started by ``torchrun``, which sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
address for each process:

- gloo on CPU, nccl on CUDA (process ``LOCAL_RANK`` uses ``cuda:LOCAL_RANK``);
- ``--batch-size`` is the global batch (the book's 2 by default): each process takes
  ``batch_size / N`` sequences a step from a ``DistributedSampler`` whose shuffle is
  seeded with ``seed + epoch``, so a run with N processes takes the same steps over
  the same sequences as one with 1 process; DDP averages the gradients;
- the evaluation losses are averaged over the processes for the log;
- only rank 0 prints, shows progress and writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TORCHRUN_HINT = ("start it with torchrun: torchrun --nproc_per_node=N -m reference --ddp "
                 "(or python -m torch.distributed.run --nproc_per_node=N -m reference --ddp)")


@dataclass(frozen=True)
class Processes:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def processes_from_environment(environ=None) -> Processes:
    """The rank, world size and local rank torchrun gave this process.

    Raises:
        RuntimeError: not started by torchrun (one line that says how to start it).
    """
    environ = os.environ if environ is None else environ
    missing = [name for name in TORCHRUN_VARIABLES if name not in environ]
    if missing:
        raise RuntimeError(f"--ddp: this process was not started by torchrun (no {', '.join(missing)}): "
                           + TORCHRUN_HINT)
    return Processes(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ["LOCAL_RANK"]))


def per_process_batch(global_batch: int, world_size: int) -> int:
    """The batch of each process for a global batch; ValueError when it does not divide evenly."""
    if global_batch % world_size:
        raise ValueError(
            f"--batch-size {global_batch} (the global batch) does not split over {world_size} processes: "
            f"give a multiple of {world_size}, e.g. --batch-size {world_size * max(1, global_batch // world_size)}"
        )
    return global_batch // world_size


def start(processes: Processes, device_type: str) -> torch.device:
    """Join the process group (nccl on CUDA, gloo on CPU); returns this process's device."""
    if device_type == "cuda":
        device = torch.device("cuda", processes.local_rank)
        torch.cuda.set_device(device)
        import inspect

        # device_id (torch >= 2.3) binds the group to this GPU at once
        bound = {"device_id": device} if "device_id" in inspect.signature(dist.init_process_group).parameters else {}
        dist.init_process_group("nccl", **bound)
        return device
    dist.init_process_group("gloo")
    return torch.device("cpu")


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class GPTDistributed(DistributedDataParallel):
    """DDP around a GPTModel that also answers the model's own attributes (``pos_emb``, ...),
    so the book's helpers (``generate_and_print_sample``) take it as the model."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model, device) -> GPTDistributed:
    """The model under DDP. Its only buffer (the causal mask) never changes, so it is not
    broadcast at every forward: a forward pass then needs no other process, and
    evaluation and sampling run on each process on its own."""
    import inspect

    device_ids = [device.index] if device.type == "cuda" else None
    # torch >= 2.12 names the option forward_sync_buffers (and warns about the old name)
    name = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            else "broadcast_buffers")
    return GPTDistributed(model, device_ids=device_ids, **{name: False})


def averaged(value: float, device) -> float:
    """The mean of ``value`` over all processes (every process must call it)."""
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / dist.get_world_size()


def averaged_evaluate(evaluate):
    """``evaluate(model, train_loader, val_loader, device, eval_iter)`` with both losses
    averaged over the processes, each of which evaluated its own share of the batches."""

    def evaluate_everywhere(model, train_loader, val_loader, device, eval_iter):
        train_loss, val_loss = evaluate(model, train_loader, val_loader, device, eval_iter)
        return averaged(train_loss, device), averaged(val_loss, device)

    return evaluate_everywhere


def distributed_loaders(text, context_length, global_batch, processes: Processes, seed: int, train_ratio=0.9):
    """The book's 90/10 split into training and validation loaders, of this process's share.

    Each process takes ``global_batch / world_size`` chunks a step. Training: a
    ``DistributedSampler`` shuffled with ``seed + epoch`` (call ``set_epoch``), the tail
    that does not split evenly dropped, and incomplete batches dropped, as in the book;
    validation in order, padded by repetition to an even split.

    Raises:
        ValueError: the batch does not split evenly, or a part of the text is shorter
            than one chunk (one line each).
    """
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    from .data import GPTDatasetV1, get_tokenizer

    batch = per_process_batch(global_batch, processes.world_size)
    split_idx = int(train_ratio * len(text))
    loaders = []
    for part, name, train in ((text[:split_idx], "training", True), (text[split_idx:], "validation", False)):
        dataset = GPTDatasetV1(part, get_tokenizer(), context_length, context_length)
        if len(dataset) < (processes.world_size if train else 1):
            raise ValueError(f"--context-length {context_length} is too long for the {name} text "
                             f"({len(part)} characters, {len(dataset)} chunks) to give each of "
                             f"{processes.world_size} processes a chunk: use a smaller value")
        sampler = DistributedSampler(dataset, num_replicas=processes.world_size, rank=processes.rank,
                                     shuffle=train, seed=seed, drop_last=train)
        loaders.append(DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=train, num_workers=0))
    return loaders
