"""The seeded training loop of the reference pipelines and the base of their configurations.

Invariants: everything random in a run draws from its seed: the shuffle order (a NumPy
generator seeded once per run), dropout and any other torch randomness (a forked torch RNG
seeded with it), and whatever the pipeline's batches draw (seeds derived from it), so the
same seed and data give bit-identical weights on CPU for a given number of torch threads
(the cache key does not record it); the caller's global torch random
state is left exactly as it was; every epoch visits every training row once, in a fresh
order; the network trains in train mode and comes back in eval mode.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]
"""``(inputs, targets)``: a preprocessed float32 batch and its int64 class indices."""
BatchSource = Callable[[int, np.ndarray], Batch]
"""``(step, rows) -> Batch``: the batch of training rows ``rows`` at step ``step``."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run; ``digest()`` keys the trained-model cache.
    A pipeline subclasses it with its own defaults (these are one epoch, no augmentation)."""

    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    augment_magnitude: float = 0.0

    def digest(self) -> str:
        """SHA-256 (hex) of the fields as sorted JSON: equal configs, equal digests."""
        payload = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()


def tensor_batches(inputs: torch.Tensor, targets: torch.Tensor) -> BatchSource:
    """The batch source of an epoch whose inputs are preprocessed up front: rows of
    ``inputs`` and ``targets``."""

    def batch_of(step: int, rows: np.ndarray) -> Batch:
        index = torch.from_numpy(rows)
        return inputs[index], targets[index]

    return batch_of


def run_epoch(network: nn.Module, optimizer: torch.optim.Optimizer, order: np.ndarray,
              batch_size: int, batch_of: BatchSource,
              after_step: Callable[[], object] | None = None) -> float:
    """One epoch in train mode over the rows ``order``, in batches of ``batch_size``:
    cross-entropy (mean over the batch), gradients zeroed, backward, optimizer step, then
    ``after_step()`` (a per-step scheduler). Returns the mean loss over every row once."""
    network.train()
    total, count = 0.0, 0
    for step, start in enumerate(range(0, len(order), batch_size)):
        batch = order[start:start + batch_size]
        inputs, targets = batch_of(step, batch)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(network(inputs), targets, reduction="mean")
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / max(count, 1)


def run_epochs(network: nn.Module, optimizer: torch.optim.Optimizer, *, seed: int,
               epochs: int, rows: int, batch_size: int,
               epoch_batches: Callable[[int], BatchSource],
               after_step: Callable[[], object] | None = None,
               after_epoch: Callable[[int, float], object] | None = None) -> nn.Module:
    """Train ``network`` for ``epochs`` epochs over ``rows`` training rows; returns it in
    eval mode.

    Epoch ``e`` (from 0) asks ``epoch_batches(e)`` for its batch source, then runs
    :func:`run_epoch` over a fresh permutation of the rows; after it,
    ``after_epoch(e, mean training loss)`` (a per-epoch scheduler, validation).
    """
    shuffler = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(epochs):
            batch_of = epoch_batches(epoch)
            order = shuffler.permutation(rows)
            loss = run_epoch(network, optimizer, order, batch_size, batch_of, after_step)
            if after_epoch is not None:
                after_epoch(epoch, loss)
    return network.eval()
