"""Serving a reference pipeline's trained model: cached weights, fresh copies, softmax.

Invariants: the trained weights are loaded (and verified) once per process; every
``trained_model()`` call returns a new network in eval mode holding a copy of them, so a
caller that fine-tunes or zeroes its copy cannot change what the next caller or ``predict``
gets; serving always runs in eval mode without autograd, whatever mode the network was
left in (the bug it prevents: dropout or batch statistics at serving time, so the same image
gets different probabilities).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

KEY = "reference"
"""The one entry of a pipeline's weight and serving caches."""


def fresh_copy(state: dict[str, dict[str, torch.Tensor]], load: Callable[[], nn.Module],
               build: Callable[[], nn.Module]) -> nn.Module:
    """A new ``build()`` network in eval mode holding the trained weights; ``load()`` (the
    verified package reader) runs only while ``state`` holds no copy of them yet."""
    if KEY not in state:
        state[KEY] = {name: tensor.clone() for name, tensor in load().state_dict().items()}
    fresh = build()
    fresh.load_state_dict(state[KEY])
    return fresh.eval()


def serving_model(serving: dict[str, nn.Module], make: Callable[[], nn.Module]) -> nn.Module:
    """The network ``predict`` serves with: ``make()`` the first time, the same one after."""
    if KEY not in serving:
        serving[KEY] = make()
    return serving[KEY]


def softmax(network: nn.Module, inputs: np.ndarray) -> np.ndarray:
    """Class probabilities of preprocessed ``inputs`` (float32 ndarray, N first): eval mode,
    no autograd, softmax over the class axis (each row sums to 1)."""
    batch = torch.from_numpy(inputs)
    network.eval()
    with torch.inference_mode():
        return torch.softmax(network(batch), dim=1).numpy()
