"""Watching a user's training loop without changing it.

:func:`watch` is a context manager around a call to the user's training function (the model,
its optimizer and its loop are created inside it). Through torch's global hooks it records

* **eval-mode training forwards**: a forward pass of a train/eval-sensitive layer (dropout
  with ``p > 0``, batch norm or any normalisation layer that tracks running statistics) made
  in eval mode while gradients are enabled, whose output a backward pass then reaches, followed
  by an optimizer step. Catches: ``model.train()`` not called again after an evaluation pass
  (dropout silently off, batch norm normalising with running statistics instead of the batch).
  An evaluation pass under ``torch.no_grad()`` (or one never backpropagated) is not a finding.
* **stale gradients**: a parameter whose ``.grad`` still holds gradient from before the
  previous optimizer step when the first new gradient arrives (``zero_grad()`` dropped, or
  called only every few steps), or whose gradient arrived but was reset before the step used
  it (``zero_grad()`` misplaced between ``backward()`` and ``step()``). Accumulation over
  micro-batches with one ``zero_grad()`` per step, ``zero_grad(set_to_none=True/False)``,
  momentum and Adam state, gradient clipping and scaling are not findings: only the first
  gradient after a step is checked against an empty ``.grad``.

How: ``register_module_forward_pre_hook`` / ``register_module_forward_hook`` see every module
call (the outermost one names the layers); ``register_optimizer_step_pre_hook`` / ``_post_hook``
see every ``optimizer.step()``. At an optimizer's first step its parameters get a
``Tensor.register_hook`` (it sees ``.grad`` before each accumulation) - the first step's own
gradients are therefore not checked. No hook returns a value, so gradients, outputs and the
trained weights are bitwise those of the unwatched loop. Every hook is removed when the block
exits, also on an exception. The global hooks see all modules and optimizers of the process
while the block runs: do not train something else concurrently in another thread.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.dropout import _DropoutNd
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

__all__ = ["Finding", "TrainingRecord", "is_mode_sensitive", "watch"]

EVAL_FORWARD = "eval-mode forward trained on"
STALE_GRADIENT = "gradient not reset between steps"
RESET_BEFORE_STEP = "gradient reset before the step"


def is_mode_sensitive(module: nn.Module) -> bool:
    """Whether ``module`` computes something different in training and in eval mode: dropout
    with ``p > 0``, or normalisation that keeps running statistics."""
    if isinstance(module, _DropoutNd):
        return module.p > 0
    if isinstance(module, _NormBase):
        return bool(module.track_running_stats)
    return False


@dataclass(frozen=True)
class Finding:
    """One observed fault of the loop. ``step`` is the optimizer step it concerns (1-based,
    counted per optimizer), ``optimizer`` names it (class and order of first step), ``where``
    the layers or parameters involved."""

    kind: str
    step: int
    optimizer: str
    where: tuple[str, ...]

    def describe(self) -> str:
        names = ", ".join(self.where[:6]) + (f" and {len(self.where) - 6} more"
                                             if len(self.where) > 6 else "")
        if self.kind == EVAL_FORWARD:
            return (f"step {self.step} of {self.optimizer}: trained on the output of "
                    f"{names} run in eval mode (model.train() not called after an "
                    "evaluation pass?)")
        if self.kind == STALE_GRADIENT:
            return (f"step {self.step} of {self.optimizer}: .grad of {names} still held "
                    "gradient from before the previous step when the new gradient arrived "
                    "(zero_grad() missing?)")
        return (f"step {self.step} of {self.optimizer}: gradient of {names} arrived but was "
                "reset before the step used it (zero_grad() between backward() and step()?)")


@dataclass
class TrainingRecord:
    """What :func:`watch` saw: the findings, and how much of the loop it could observe."""

    findings: list[Finding] = field(default_factory=list)
    steps: int = 0
    """Optimizer steps seen (all optimizers)."""
    watched_parameters: int = 0
    """Parameters whose gradients were watched (from their optimizer's first step)."""
    sensitive_forwards: int = 0
    """Forward passes of train/eval-sensitive layers with gradients enabled."""
    eval_forwards: int = 0
    """Of those, the ones made in eval mode (findings only when trained on and stepped)."""

    @property
    def ok(self) -> bool:
        return not self.findings

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def describe(self) -> str:
        head = (f"{self.steps} optimizer steps, {self.watched_parameters} parameters watched, "
                f"{self.sensitive_forwards} forwards of dropout/normalisation layers")
        if not self.findings:
            return head + ": no findings"
        return head + ":\n" + "\n".join("  " + f.describe() for f in self.findings)


class _Watcher:
    def __init__(self, record: TrainingRecord) -> None:
        self.record = record
        self.stack: list[nn.Module] = []
        self.names: dict[int, str] = {}
        self.roots: list[weakref.ref] = []
        self.optimizers: dict[int, tuple[str, int]] = {}  # id -> (label, steps taken)
        self.params: dict[int, dict[str, Any]] = {}
        self.pending_eval: dict[str, None] = {}
        self.handles: list[Any] = []

    # -- naming -------------------------------------------------------------------------
    def _root_names(self, target: Any, parameters: bool) -> str | None:
        for ref in self.roots:
            root = ref()
            if root is None:
                continue
            items = root.named_parameters() if parameters else root.named_modules()
            for name, item in items:
                if item is target:
                    return name or type(root).__name__
        return None

    def _module_name(self, module: nn.Module) -> str:
        key = id(module)
        if key not in self.names:
            name = self._root_names(module, parameters=False)
            self.names[key] = (f"{name} ({type(module).__name__})" if name
                               else type(module).__name__)
        return self.names[key]

    # -- module hooks -------------------------------------------------------------------
    def forward_pre(self, module: nn.Module, args: Any) -> None:
        if not self.stack and not any(r() is module for r in self.roots):
            self.roots = [r for r in self.roots if r() is not None]
            self.roots.append(weakref.ref(module))
        self.stack.append(module)

    def forward(self, module: nn.Module, args: Any, output: Any) -> None:
        while self.stack:
            if self.stack.pop() is module:
                break
        if not torch.is_grad_enabled() or not is_mode_sensitive(module):
            return
        self.record.sensitive_forwards += 1
        if module.training:
            return
        self.record.eval_forwards += 1
        if isinstance(output, torch.Tensor) and output.requires_grad:
            name = self._module_name(module)

            def reached(grad: torch.Tensor, name: str = name) -> None:
                self.pending_eval[name] = None

            self.handles.append(output.register_hook(reached))

    # -- optimizer hooks ----------------------------------------------------------------
    def _optimizer(self, optimizer: Any) -> tuple[str, int]:
        key = id(optimizer)
        if key not in self.optimizers:
            self.optimizers[key] = (f"{type(optimizer).__name__} #{len(self.optimizers)}", 0)
        return self.optimizers[key]

    def _parameters(self, optimizer: Any) -> Iterator[torch.Tensor]:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if isinstance(p, torch.Tensor) and p.requires_grad:
                    yield p

    def step_pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        label, done = self._optimizer(optimizer)
        step = done + 1
        reset: list[str] = []
        for p in self._parameters(optimizer):
            state = self.params.get(id(p))
            if state is None or state["ref"]() is not p:
                self._attach(p, label)
                continue
            if state["arrived"] and (p.grad is None or not bool(p.grad.any())):
                reset.append(state["name"])
        if reset:
            self.record.findings.append(Finding(RESET_BEFORE_STEP, step, label, tuple(reset)))
        if self.pending_eval:
            self.record.findings.append(
                Finding(EVAL_FORWARD, step, label, tuple(self.pending_eval)))
            self.pending_eval.clear()

    def step_post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        label, done = self._optimizer(optimizer)
        self.optimizers[id(optimizer)] = (label, done + 1)
        self.record.steps += 1
        for p in self._parameters(optimizer):
            state = self.params.get(id(p))
            if state is not None and state["ref"]() is p:
                state["armed"] = True
                state["arrived"] = False
                state["step"] = done + 2

    def _attach(self, p: torch.Tensor, label: str) -> None:
        name = self._root_names(p, parameters=True) or f"a parameter of {label} {tuple(p.shape)}"
        state = {"ref": weakref.ref(p), "name": name, "armed": False, "arrived": False,
                 "step": 1, "optimizer": label}
        self.params[id(p)] = state
        self.record.watched_parameters += 1

        def incoming(grad: torch.Tensor, state: dict[str, Any] = state) -> None:
            param = state["ref"]()
            if param is None:
                return
            if state["armed"]:
                state["armed"] = False
                if param.grad is not None and bool(param.grad.any()):
                    self._stale(state)
            if not state["arrived"] and bool(grad.any()):
                state["arrived"] = True

        self.handles.append(p.register_hook(incoming))

    def _stale(self, state: dict[str, Any]) -> None:
        for i, finding in enumerate(self.record.findings):
            if (finding.kind == STALE_GRADIENT and finding.step == state["step"]
                    and finding.optimizer == state["optimizer"]):
                self.record.findings[i] = Finding(STALE_GRADIENT, finding.step,
                                                  finding.optimizer,
                                                  (*finding.where, state["name"]))
                return
        self.record.findings.append(
            Finding(STALE_GRADIENT, state["step"], state["optimizer"], (state["name"],)))


@contextmanager
def watch() -> Iterator[TrainingRecord]:
    """Watch every training loop run inside the block; yields the :class:`TrainingRecord`,
    complete when the block exits. All hooks are removed on exit, also on an exception.

    >>> with watch() as record:                                     # doctest: +SKIP
    ...     model = target.train(images, labels, seed=0, epochs=2)
    >>> record.findings                                             # doctest: +SKIP
    """
    record = TrainingRecord()
    watcher = _Watcher(record)
    global_handles = []
    try:
        global_handles.append(
            nn.modules.module.register_module_forward_pre_hook(watcher.forward_pre))
        global_handles.append(
            nn.modules.module.register_module_forward_hook(watcher.forward, always_call=True))
        global_handles.append(register_optimizer_step_pre_hook(watcher.step_pre))
        global_handles.append(register_optimizer_step_post_hook(watcher.step_post))
        yield record
    finally:
        for handle in global_handles + watcher.handles:
            handle.remove()
        watcher.handles.clear()
        record.findings.sort(key=lambda f: (f.optimizer, f.step, f.kind))
