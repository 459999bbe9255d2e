"""Tests for :mod:`mlprop.training_watch`: hand-written training loops, correct and with the
faults the watcher exists for (dropped or misplaced ``zero_grad()``, ``model.train()`` not
called again after an evaluation pass), on a tiny seeded CNN with dropout and batch norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlprop.training_watch import (
    EVAL_FORWARD,
    RESET_BEFORE_STEP,
    STALE_GRADIENT,
    is_mode_sensitive,
    watch,
)


def _data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _model(batch_norm: bool = True, dropout: bool = True) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(1, 4, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(0.3))
    layers.append(nn.Linear(4 * 64, 3))
    return nn.Sequential(*layers)


def train(*, optimizer: str = "sgd", zero_grad: str = "before", eval_between: str = "none",
          micro_batches: int = 1, clip: bool = False, set_to_none: bool = True,
          batch_norm: bool = True, dropout: bool = True, epochs: int = 3,
          seed: int = 0) -> nn.Module:
    """A user's training loop with switchable faults. ``zero_grad``: "before" (correct),
    "missing", "after_backward" (between backward and step); ``eval_between``: "none",
    "no_grad" (correct evaluation pass), "forgot_train" (eval pass, model left in eval)."""
    torch.manual_seed(seed)
    model = _model(batch_norm, dropout)
    opt = (torch.optim.Adam(model.parameters(), lr=1e-2) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    images, labels = _data()
    loss_fn = nn.CrossEntropyLoss()
    for _epoch in range(epochs):
        if eval_between != "forgot_train":
            model.train()  # the faulty loop relies on the model starting in training mode
        order = torch.randperm(len(images))
        for start in range(0, len(images), 8):
            idx = order[start:start + 8]
            if zero_grad == "before":
                opt.zero_grad(set_to_none=set_to_none)
            for part in idx.chunk(micro_batches):
                loss = loss_fn(model(images[part]), labels[part]) / micro_batches
                loss.backward()
            if zero_grad == "after_backward":
                opt.zero_grad()
            if clip:
                nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
        if eval_between == "no_grad":
            model.eval()
            with torch.no_grad():
                model(images)
            model.train()
        elif eval_between == "forgot_train":
            model.eval()
            with torch.no_grad():
                model(images)
    return model


STEPS_PER_EPOCH = 4


@pytest.mark.parametrize("options", [
    {}, {"optimizer": "adam"}, {"set_to_none": False}, {"clip": True},
    {"micro_batches": 2}, {"micro_batches": 4, "optimizer": "adam"},
    {"eval_between": "no_grad"}, {"eval_between": "no_grad", "batch_norm": False},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_correct_loops_have_no_findings(options):
    with watch() as record:
        train(**options)
    assert record.findings == [], record.describe()
    assert record.steps == 3 * STEPS_PER_EPOCH
    assert record.watched_parameters == len(list(_model(
        options.get("batch_norm", True)).parameters()))
    assert record.sensitive_forwards > 0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_missing_zero_grad_is_flagged_at_every_step_after_the_first(optimizer):
    with watch() as record:
        train(optimizer=optimizer, zero_grad="missing")
    stale = record.of_kind(STALE_GRADIENT)
    assert [f.step for f in stale] == list(range(2, 3 * STEPS_PER_EPOCH + 1))
    assert {f.kind for f in record.findings} == {STALE_GRADIENT}
    assert "0.weight" in stale[0].where and "zero_grad() missing" in stale[0].describe()


def test_zero_grad_between_backward_and_step_is_flagged():
    with watch() as record:
        train(zero_grad="after_backward")
    reset = record.of_kind(RESET_BEFORE_STEP)
    assert [f.step for f in reset] == list(range(2, 3 * STEPS_PER_EPOCH + 1))
    assert {f.kind for f in record.findings} == {RESET_BEFORE_STEP}


@pytest.mark.parametrize("batch_norm", [True, False])
def test_model_left_in_eval_after_an_evaluation_pass_is_flagged(batch_norm):
    with watch() as record:
        train(eval_between="forgot_train", batch_norm=batch_norm)
    found = record.of_kind(EVAL_FORWARD)
    # epoch 0 trains in training mode; every step of epochs 1 and 2 trains in eval mode
    assert [f.step for f in found] == list(range(STEPS_PER_EPOCH + 1,
                                                  3 * STEPS_PER_EPOCH + 1))
    layers = {"4 (Dropout)", "1 (BatchNorm2d)"} if batch_norm else {"3 (Dropout)"}
    assert set(found[0].where) == layers, found[0].describe()
    assert "model.train() not called" in found[0].describe()
    assert {f.kind for f in record.findings} == {EVAL_FORWARD}


def test_eval_forward_with_grad_that_is_never_trained_on_is_not_flagged():
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    images, labels = _data()
    with watch() as record:
        for _ in range(3):
            model.train()
            opt.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            opt.step()
            model.eval()
            model(images)  # a validation pass that forgot no_grad: wasteful, not a fault
    assert record.findings == [] and record.eval_forwards > 0


def test_zero_grad_every_other_step_is_flagged_on_the_skipped_steps():
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    images, labels = _data()
    with watch() as record:
        for i in range(6):
            if i % 2 == 0:
                opt.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            opt.step()
    assert [(f.kind, f.step) for f in record.findings] == [(STALE_GRADIENT, s) for s in (2, 4, 6)]


def test_closure_optimizer_two_optimizers_and_frozen_layers_pass():
    images, labels = _data()
    torch.manual_seed(0)
    model = _model()
    lbfgs = torch.optim.LBFGS(model.parameters(), max_iter=3)

    def closure():
        lbfgs.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        return loss

    with watch() as record:
        for _ in range(3):
            lbfgs.step(closure)
        params = list(model.parameters())
        for p in params[:2]:
            p.requires_grad_(False)  # the first convolution frozen on purpose
        first = torch.optim.SGD(params[2:4], lr=0.1)
        second = torch.optim.Adam(params[4:], lr=0.01)
        for _ in range(4):
            model.zero_grad()
            nn.functional.cross_entropy(model(images), labels).backward()
            first.step()
            second.step()
    assert record.findings == [] and record.steps == 3 + 8, record.describe()


def test_mode_sensitive_layers():
    assert is_mode_sensitive(nn.Dropout(0.5)) and not is_mode_sensitive(nn.Dropout(0.0))
    assert is_mode_sensitive(nn.BatchNorm1d(3))
    assert not is_mode_sensitive(nn.BatchNorm2d(3, track_running_stats=False))
    assert not is_mode_sensitive(nn.GroupNorm(1, 3)) and not is_mode_sensitive(nn.ReLU())


def _global_hook_counts() -> tuple[int, ...]:
    from torch.nn.modules import module
    from torch.optim import optimizer
    return (len(module._global_forward_hooks), len(module._global_forward_pre_hooks),
            len(optimizer._global_optimizer_pre_hooks),
            len(optimizer._global_optimizer_post_hooks))


def test_hooks_are_gone_after_exit_also_after_an_exception():
    before = _global_hook_counts()
    with watch() as record:
        model = train(epochs=1)
        assert _global_hook_counts() != before
    assert _global_hook_counts() == before
    assert all(not p._backward_hooks for p in model.parameters())
    with pytest.raises(RuntimeError, match="user's loop failed"), watch():
        model = train(epochs=1)
        raise RuntimeError("user's loop failed")
    assert _global_hook_counts() == before
    assert all(not p._backward_hooks for p in model.parameters())
    # a loop trained afterwards is not seen by the finished record
    steps = record.steps
    train(epochs=1, zero_grad="missing")
    assert record.steps == steps and record.findings == []


@pytest.mark.parametrize("options", [{}, {"zero_grad": "missing", "optimizer": "adam"},
                                     {"eval_between": "forgot_train"}])
def test_watched_loop_trains_bitwise_identical_weights(options):
    plain = train(**options).state_dict()
    with watch():
        watched = train(**options).state_dict()
    assert plain.keys() == watched.keys()
    for key in plain:
        assert torch.equal(plain[key], watched[key]), key
