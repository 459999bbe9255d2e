"""Properties of the training stage: ``target.train(images, labels, *, seed, epochs)`` (the
user's own training loop) and ``target.save_model`` / ``load_model`` (the user's checkpoints).

Each property calls the user's ``train`` on a small labelled set that any working CNN
separates (:func:`mlprop.strategies.separable_sets`: tens of images) for a few epochs, so the
loop runs exactly as in production, only on less data. A ``train`` that raises, returns
something that is not a ``torch.nn.Module``, or a module whose logits do not have the shape
``(N, num_classes)`` on ``preprocess`` output is a failure naming ``train`` and what came back.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.checks import as_numpy, as_tensor, fail, not_checked, reproduction, requires
from mlprop.profiles import examples_at_most

DEFAULTS = {"train_accuracy": 0.9, "train_epochs": 30, "train_short_epochs": 2,
            "train_watch_epochs": 4}
"""``train_accuracy``: the training accuracy ``train`` must reach on a separable set after
``train_epochs`` epochs (chance is 1/4 with four classes; the digits and colour references
reach 1.0 on every set drawn, 40 sets each, and 0.69 at most with the labels shuffled). The
properties that do not need a trained network run ``train_short_epochs``; the watched loop runs
``train_watch_epochs`` (at least three optimizer steps on most loops). A target overrides
any of them with ``Target(thresholds={...})`` (e.g. more epochs for a long warm-up)."""


def _setting(target, name: str) -> float:
    return target.threshold(name, DEFAULTS[name])


def _epochs(target, name: str) -> int:
    return max(1, int(_setting(target, name)))


def _call(what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; an exception becomes a failure naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the user's code: any error is a finding, not a crash
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
        fail(f"{what} raised {error}", "it to run on valid data", error)


def _train(target, images, labels, *, seed: int, epochs: int) -> torch.nn.Module:
    """The user's ``train``, checked: a Module whose eval-mode logits on ``preprocess(images)``
    have shape ``(N, num_classes)``."""
    call = f"train(images, labels, seed={seed}, epochs={epochs})"
    with _GlobalRngs():  # a loop that seeds the global generators leaves the user's alone
        model = _call(call, target.train, images, labels, seed=seed, epochs=epochs)
    if not isinstance(model, torch.nn.Module):
        fail(f"{call} returned a {type(model).__name__}, not the trained torch.nn.Module",
             "a torch.nn.Module", f"{type(model).__name__}: {repr(model)[:120]}")
    logits = _logits(target, model, images, call)
    expected = (len(images), target.schema.num_classes)
    if tuple(logits.shape) != expected:
        fail(f"the module {call} returned gives logits of shape {tuple(logits.shape)} on "
             f"preprocess output, not (N, num_classes) = {expected}", str(expected),
             str(tuple(logits.shape)))
    return model


def _device(model) -> torch.device:
    """Where ``model`` lives (its first parameter or buffer; the CPU for an empty one): a
    ``train`` that trains on a GPU returns a module there."""
    for value in (*model.parameters(), *model.buffers()):
        return value.device
    return torch.device("cpu")


#: Largest relative difference (norm of the difference over the norm of the entry) two
#: same-seed runs may show off the CPU, where cuDNN's atomic-add kernels are not bitwise
#: reproducible; a loop that draws from the global RNG differs by tens of percent.
OFF_CPU_RTOL = 1e-3


def differing_entries(first: dict[str, np.ndarray], second: dict[str, np.ndarray], *,
                      on_cpu: bool) -> list[str]:
    """The state-dict entries that differ between two same-seed runs: any bit on the CPU;
    off it, more than :data:`OFF_CPU_RTOL` relative (or any bit in an integer entry)."""
    differ = [name for name in second if name not in first]
    for name, value in first.items():
        other = second.get(name)
        if other is None or other.shape != value.shape:
            differ.append(name)
        elif on_cpu or value.dtype.kind != "f":
            if not np.array_equal(value, other):
                differ.append(name)
        else:
            gap = float(np.linalg.norm((value - other).astype(np.float64).ravel()))
            if not gap <= OFF_CPU_RTOL * float(np.linalg.norm(value.astype(np.float64).ravel())):
                differ.append(name)
    return differ


def _logits(target, model, images, call: str) -> np.ndarray:
    inputs = as_tensor(target.preprocess(images)).to(_device(model))
    model.eval()
    with torch.no_grad():
        return as_numpy(_call(f"the module {call} returned, called on preprocess output",
                              model, inputs)).copy()


def _state(model) -> dict[str, np.ndarray]:
    return {name: as_numpy(value).copy() for name, value in model.state_dict().items()}


def _scramble_global_rngs(salt: int) -> None:
    """Put torch's, NumPy's and Python's global generators in a state that depends on
    ``salt``: a loop that draws from them gives different results for different salts."""
    torch.manual_seed(salt)
    np.random.seed(salt % 2**32)
    random.seed(salt)


class _GlobalRngs:
    """Restore the global generators on exit (the property leaves them as it found them)."""

    def __enter__(self):
        self.states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
        return self

    def __exit__(self, *exc):
        torch.set_rng_state(self.states[0])
        np.random.set_state(self.states[1])
        random.setstate(self.states[2])
        return False


@requires("train")
@examples_at_most(2, cost=3)
@given(data=st.data(), seed=gen.seeds())
def test_train_same_seed_gives_identical_weights(target, data, seed):
    """train(images, labels, seed=s) twice, with the global random generators (torch, NumPy,
    Python) in different states, gives bitwise identical parameters and buffers and identical
    eval-mode outputs on the CPU; a model trained on a GPU agrees within ``OFF_CPU_RTOL``
    relative per entry (GPU kernels are not bitwise reproducible by default).

    Catches: a loop that draws from the global RNG (an unseeded ``DataLoader(shuffle=True)``,
    an augmentation on ``np.random``, dropout without a seeded generator): results that cannot
    be reproduced from the seed a run reports."""
    images, labels = data.draw(gen.separable_sets(target.schema), label="training set")
    epochs = _epochs(target, "train_short_epochs")
    with reproduction(target, images=images, labels=labels, seed=seed, epochs=epochs), \
            _GlobalRngs():
        _scramble_global_rngs(seed ^ 0x5EED)
        first = _train(target, images, labels, seed=seed, epochs=epochs)
        first_state, first_out = _state(first), _logits(target, first, images, "train")
        del first
        _scramble_global_rngs(seed ^ 0xF00D)
        second = _train(target, images, labels, seed=seed, epochs=epochs)
        second_state, second_out = _state(second), _logits(target, second, images, "train")
        on_cpu = _device(second).type == "cpu"
        differ = differing_entries(first_state, second_state, on_cpu=on_cpu)
        if differ:
            fail(f"train with seed={seed} gives different weights in two runs on the same data",
                 "bitwise identical parameters and buffers" if on_cpu else
                 f"parameters and buffers within {OFF_CPU_RTOL} relative (on {_device(second)})",
                 f"{len(differ)} of {len(first_state)} entries differ: {differ[:8]}")
        if on_cpu and not np.array_equal(first_out, second_out):
            fail(f"train with seed={seed} gives different eval outputs in two runs on the same "
                 "data", "identical logits",
                 f"max difference {np.abs(first_out - second_out).max():.3g}")


@requires("train")
@examples_at_most(2, cost=3)
@given(data=st.data(), seeds=st.lists(gen.seeds(), min_size=2, max_size=2, unique=True))
def test_train_different_seeds_give_different_weights(target, data, seeds):
    """train with two different seeds on the same data gives different weights (a trainer
    deterministic by design declares this check in ``expected_failed_checks``).

    Catches: a seed accepted but never used (a hard-coded ``manual_seed(0)``): every 'run with
    another seed' of an experiment is the same run."""
    images, labels = data.draw(gen.separable_sets(target.schema), label="training set")
    epochs = _epochs(target, "train_short_epochs")
    with reproduction(target, images=images, labels=labels, seeds=seeds, epochs=epochs), \
            _GlobalRngs():
        _scramble_global_rngs(0)
        first = _state(_train(target, images, labels, seed=seeds[0], epochs=epochs))
        _scramble_global_rngs(0)
        second = _state(_train(target, images, labels, seed=seeds[1], epochs=epochs))
        floats = [name for name, value in first.items() if value.dtype.kind == "f"]
        if floats and all(name in second and np.array_equal(first[name], second[name])
                          for name in floats):
            fail("train ignores its seed", f"different weights for seeds {seeds}",
                 f"identical values in all {len(floats)} floating-point entries")


@requires("train")
@examples_at_most(2, cost=3)
@given(data=st.data(), seed=gen.seeds())
def test_train_leaves_the_callers_arrays_untouched(target, data, seed):
    """After train(images, labels, ...) the caller's arrays hold the same bytes, dtype and
    shape as before; and train also runs on read-only arrays (memory-mapped data sets).

    Catches: normalisation, augmentation or label remapping done in place on the caller's
    arrays (``images /= 255`` on a view, ``np.random.shuffle(labels)``): the data set changes
    under the rest of the program, and a second training run sees other data."""
    images, labels = data.draw(gen.separable_sets(target.schema), label="training set")
    epochs = _epochs(target, "train_short_epochs")
    with reproduction(target, images=images, labels=labels, seed=seed, epochs=epochs), \
            _GlobalRngs():
        given_images, given_labels = images.copy(), labels.copy()
        _train(target, given_images, given_labels, seed=seed, epochs=epochs)
        for name, after, before in (("images", given_images, images),
                                    ("labels", given_labels, labels)):
            if after.dtype != before.dtype or after.shape != before.shape:
                fail(f"train changed the caller's {name} array", f"{before.dtype} "
                     f"{before.shape}", f"{after.dtype} {after.shape}")
            if not np.array_equal(after, before):
                changed = int((after != before).sum())
                fail(f"train wrote into the caller's {name} array", "the same values as passed",
                     f"{changed} of {before.size} values changed")
        for array in (given_images, given_labels):
            array.flags.writeable = False
        _train(target, given_images, given_labels, seed=seed, epochs=epochs)


@requires("train")
@examples_at_most(2, cost=3)
@given(data=st.data(), seed=gen.seeds())
def test_train_learns_a_separable_set(target, data, seed):
    """train on a small set that any working CNN separates (4 classes, or all of a schema's
    2 or 3, each a lit cell of a grid; 8-10 images per class) for ``train_epochs`` epochs
    reaches a training accuracy of at least ``train_accuracy`` (eval mode, on the training
    images).

    Power: with labels shuffled apart from the images the references score 0.20-0.26 on
    average and at most 0.69 (60 drawn sets each, threshold 0.9). Four classes, not two: a
    small network trained on shuffled labels learns each cell's most frequent label, and with
    two classes of 6 images that is the true one for about 1 set in 7.

    Catches: labels shuffled apart from the images, an optimizer that never steps, a zero
    learning rate, a loss over the wrong axis, gradients that never reach the weights."""
    images, labels = data.draw(gen.separable_sets(target.schema, min_classes=4, max_classes=4,
                                                  min_per_class=8), label="training set")
    epochs = _epochs(target, "train_epochs")
    floor = _setting(target, "train_accuracy")
    with reproduction(target, images=images, labels=labels, seed=seed, epochs=epochs), \
            _GlobalRngs():
        model = _train(target, images, labels, seed=seed, epochs=epochs)
        predicted = _logits(target, model, images, "train").argmax(axis=1)
        accuracy = float((predicted == labels).mean())
        if accuracy < floor:
            classes = len(np.unique(labels))
            fail(f"train does not learn a separable set of {len(labels)} images, {classes} "
                 f"classes, in {epochs} epochs",
                 f"training accuracy >= {floor} (chance {1 / classes:.2f})", f"{accuracy:.3f}")


class _FirstTrainedForward:
    """Snapshot of the parameters of the first module run forward with gradients enabled
    and a trainable parameter (the model being trained, before its first step), through
    torch's global forward pre-hook: the loop itself is not changed."""

    def __init__(self) -> None:
        self.initial: dict[str, torch.Tensor] | None = None

    def __enter__(self):
        def hook(module, args):
            if self.initial is None and torch.is_grad_enabled():
                trainable = {name: p.detach().clone()
                             for name, p in module.named_parameters() if p.requires_grad}
                if trainable:
                    self.initial = trainable

        self.handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        return False


def _unwrapped(name: str) -> str:
    """A parameter name without the prefixes of ``DataParallel``/``DistributedDataParallel``
    (``module.``) and ``torch.compile`` (``_orig_mod.``): the loop may train the wrapper and
    return the module inside, or the other way round."""
    parts = name.split(".")
    while len(parts) > 1 and parts[0] in ("module", "_orig_mod"):
        parts = parts[1:]
    return ".".join(parts)


@requires("train")
@examples_at_most(2, cost=3)
@given(data=st.data(), seed=gen.seeds())
def test_train_moves_every_trainable_parameter(target, data, seed):
    """Every parameter that is trainable (``requires_grad``) when the loop first runs the
    model forward has a different value in the module train returns; the failure names those
    that did not move.

    Catches: a layer left out of the optimizer (``Adam(model.head.parameters())``, parameters
    of a layer added after the optimizer was built), a detached branch, a layer frozen by
    mistake: it keeps its random initial weights."""
    images, labels = data.draw(gen.separable_sets(target.schema), label="training set")
    epochs = _epochs(target, "train_short_epochs")
    with reproduction(target, images=images, labels=labels, seed=seed, epochs=epochs), \
            _GlobalRngs():
        with _FirstTrainedForward() as watch:
            model = _train(target, images, labels, seed=seed, epochs=epochs)
        if watch.initial is None:
            not_checked("train ran no forward pass with gradients enabled through a module "
                        "with trainable parameters, so the initial weights were not seen")
        final = {_unwrapped(name): p for name, p in model.named_parameters()}
        initial = {_unwrapped(name): value for name, value in watch.initial.items()}
        common = [name for name in initial if name in final]
        if not common:
            not_checked("the parameters of the module train returned are named differently "
                        "from those of the module it trained (a wrapper or a copy); return the "
                        "trained module itself")
        still = [name for name in common
                 if torch.equal(final[name].detach(), initial[name])]
        if still:
            fail(f"train left {len(still)} of {len(common)} trainable parameters at their "
                 f"initial values: {still[:12]}", "every trainable parameter moves during "
                 "training", f"unchanged: {still}")


def _model_to_save(target, seed: int) -> torch.nn.Module:
    """The model a checkpoint test saves: the trained one (real weights and batch-norm
    statistics) when the target has it, else a freshly built one."""
    with _GlobalRngs():  # a model trained on first use may seed the global generators
        if target.trained_model is not None:
            return _call("trained_model()", target.trained_model)
        if target.build_model is not None:
            return _call(f"build_model({seed})", target.build_model, seed)
    not_checked("a checkpoint needs a model to save: the target has neither trained_model "
                "nor build_model")


def _modes(model: torch.nn.Module) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


def _checkpoint_images(target, data) -> np.ndarray:
    if target.holdout is not None:
        images, _ = target.holdout()
        if len(images):
            return images[:8]
    return data.draw(gen.images(target.schema, min_batch=2, max_batch=4), label="images")


@requires("save_model", "load_model")
@examples_at_most(2, cost=2)
@given(data=st.data(), seed=gen.seeds())
def test_load_model_after_save_model_restores_weights_buffers_and_outputs(target, data, seed):
    """``load_model(path)`` after ``save_model(model, path)`` gives bitwise the same
    parameters and buffers and the same eval-mode outputs, and saving leaves the model as it
    was (its state and every module's train/eval mode).

    Catches: a checkpoint that stores the parameters but not the batch-norm statistics, a
    lossy save (float16 "to halve the file"), a save that switches the model to eval mode
    or moves it under the caller's feet."""
    import tempfile
    from pathlib import Path

    model = _model_to_save(target, seed)
    images = _checkpoint_images(target, data)
    before_state, before_modes = _state(model), _modes(model)
    expected = _logits(target, model, images, "the model to save")
    for name, module in model.named_modules():  # back to the modes it came in (_logits: eval)
        module.training = before_modes[name]
    with reproduction(target, seed=seed, images=images), \
            tempfile.TemporaryDirectory(prefix="mlprop-checkpoint-") as directory:
        path = Path(directory) / "checkpoint"
        _call("save_model(model, path)", target.save_model, model, path)
        changed = [n for n, v in _state(model).items() if not np.array_equal(v, before_state[n])]
        if changed or _modes(model) != before_modes:
            fail("save_model changed the model it saved", "the same state and train/eval "
                 "mode as before saving", f"state entries changed: {changed[:8]}; modes "
                 f"changed: {_modes(model) != before_modes}")
        loaded = _call("load_model(path)", target.load_model, path)
        if not isinstance(loaded, torch.nn.Module):
            fail("load_model returned something that is not a torch.nn.Module",
                 "a torch.nn.Module", type(loaded).__name__)
        restored = _state(loaded)
        missing = sorted(set(before_state) - set(restored))
        differ = [n for n in before_state if n in restored
                  and not np.array_equal(before_state[n], restored[n])]
        if missing or differ:
            fail("load_model(save_model(model)) does not restore the saved state",
                 "every parameter and buffer, bitwise", f"missing {missing[:8]}, differing "
                 f"{differ[:8]} (of {len(before_state)} entries)")
        actual = _logits(target, loaded, images, "the loaded model")
        if not np.array_equal(actual, expected):
            fail("the loaded model gives other eval outputs than the saved one",
                 "identical logits", f"max difference {np.abs(actual - expected).max():.3g}")


def _damaged(path, how: str, position: float) -> None:
    """Damage the largest file of the checkpoint at ``path`` (a file or a directory): cut it
    to half its size, or flip one bit at ``position`` (a share of its length)."""
    from pathlib import Path

    root = Path(path)
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    largest = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    if how == "truncated":
        data = data[:len(data) // 2]
    else:
        data[int(len(data) * position)] ^= 0x10
    largest.write_bytes(bytes(data))


@requires("save_model", "load_model")
@examples_at_most(1, cost=2)
@given(seed=gen.seeds())
def test_a_damaged_checkpoint_does_not_load_silently(target, seed):
    """A checkpoint truncated to half, or with one bit flipped in its largest file, makes
    ``load_model`` raise; it never loads into a model with other weights as if nothing
    happened. (A flip that lands where the reader never looks, and loads the saved weights
    exactly, is no finding; three positions are tried.)

    Catches: checkpoints written and read without an integrity check (plain ``torch.save`` /
    ``torch.load``: a flipped bit in a tensor loads silently), so a disk or transfer error
    ships a model nobody trained. Fix: store a SHA-256 of the weights beside them and verify
    it on load (as mlprop's own packages do)."""
    import shutil
    import tempfile
    from pathlib import Path

    model = _model_to_save(target, seed)
    saved = _state(model)
    with reproduction(target, seed=seed), \
            tempfile.TemporaryDirectory(prefix="mlprop-checkpoint-") as directory:
        original = Path(directory) / "checkpoint"
        _call("save_model(model, path)", target.save_model, model, original)
        for how, positions in (("truncated", (0.5,)), ("bit-flipped", (0.5, 0.35, 0.65))):
            for position in positions:
                path = Path(directory) / f"{how}-{position}"
                if original.is_dir():
                    shutil.copytree(original, path)
                else:
                    shutil.copyfile(original, path)
                _damaged(path, how, position)
                try:
                    loaded = target.load_model(path)
                except Exception:
                    break  # refused: what the property asks
                restored = _state(loaded) if isinstance(loaded, torch.nn.Module) else {}
                differ = [n for n in saved if n not in restored
                          or not np.array_equal(saved[n], restored[n])]
                if differ:
                    fail(f"load_model loaded a {how} checkpoint without an error",
                         "an error (store a SHA-256 of the weights and check it on load)",
                         f"a model whose {len(differ)} of {len(saved)} entries differ from "
                         f"the saved ones ({differ[:4]})")


def _watched_run(target, data, seed: int):
    from mlprop.training_watch import watch

    images, labels = data.draw(gen.separable_sets(target.schema), label="training set")
    epochs = _epochs(target, "train_watch_epochs")
    with watch() as record:
        _train(target, images, labels, seed=seed, epochs=epochs)
    return images, labels, epochs, record


@requires("train")
@examples_at_most(2, cost=3)
@given(data=st.data(), seed=gen.seeds())
def test_train_runs_the_forwards_it_trains_on_in_training_mode(target, data, seed):
    """Every forward pass whose output ``train`` backpropagates and steps on runs its dropout
    and normalisation layers in training mode; an evaluation pass under ``no_grad`` between
    epochs is fine. Watched through torch's global hooks: the loop is not changed.

    Catches: ``model.train()`` not called again after an evaluation pass (or never), so
    dropout is silently off and batch norm normalises with running statistics while the model
    trains. Frozen normalisation on purpose is declared in ``expected_failed_checks``."""
    from mlprop.training_watch import EVAL_FORWARD

    images, labels, epochs, record = _watched_run(target, data, seed)
    with reproduction(target, images=images, labels=labels, seed=seed, epochs=epochs):
        if record.steps == 0:
            not_checked("train made no optimizer step that the hooks could see (a "
                        "torch.optim optimizer is needed)")
        if record.sensitive_forwards == 0:
            not_checked("the model has no dropout or normalisation layer with running "
                        "statistics: its train/eval mode changes nothing")
        found = record.of_kind(EVAL_FORWARD)
        if found:
            fail("train trains on forward passes made in eval mode",
                 "dropout and batch norm in training mode in every trained-on forward",
                 f"{len(found)} of {record.steps} steps: {found[0].describe()}")


@requires("train")
@examples_at_most(2, cost=3)
@given(data=st.data(), seed=gen.seeds())
def test_train_resets_gradients_between_optimizer_steps(target, data, seed):
    """Between two optimizer steps the gradients are reset: the first gradient after a step
    lands on an empty ``.grad``, and no gradient is reset between ``backward()`` and the step
    that uses it. Accumulation over micro-batches, momentum, Adam and clipping are fine.

    Catches: ``optimizer.zero_grad()`` dropped (every step follows the sum of all gradients so
    far) or misplaced after ``backward()`` (the step uses nothing)."""
    from mlprop.training_watch import EVAL_FORWARD

    images, labels, epochs, record = _watched_run(target, data, seed)
    with reproduction(target, images=images, labels=labels, seed=seed, epochs=epochs):
        if record.steps < 2 or record.watched_parameters == 0:
            not_checked(f"train made {record.steps} optimizer step(s) the hooks could see on "
                        f"{len(labels)} images in {epochs} epochs; two are needed (raise "
                        "thresholds={'train_watch_epochs': ...})")
        found = [f for f in record.findings if f.kind != EVAL_FORWARD]
        if found:
            fail("train does not reset the gradients between optimizer steps",
                 "each step uses only the gradients computed since the previous one",
                 f"{len(found)} findings over {record.steps} steps: {found[0].describe()}")


@requires("training_data", "holdout")
@examples_at_most(1, cost=2)
@given(st.just(None))
def test_no_holdout_image_is_in_the_training_data(target, _):
    """No ``holdout()`` image is also in ``training_data()``, exactly (same bytes) or nearly
    (the same image shifted by a pixel or two, brighter, re-encoded with noise or resized):
    found by image hashes in time linear in the data, checked by correlation (>= 0.995).

    Catches: a split done after augmentation or deduplication, test images copied into the
    training folder, a holdout drawn from data the model saw: an accuracy that measures
    memory, not generalisation."""
    from mlprop.leakage import find_leaks
    from mlprop.training_data import training_batches

    holdout, _labels = target.holdout()
    leaks = find_leaks(holdout, training_batches(target), target.schema, max_pairs=20)
    if leaks:
        first = leaks[0]
        batches = training_batches(target)
        for _ in range(first.batch):
            next(batches)
        copy = next(batches)[0][first.row]
        with reproduction(target, holdout_image=holdout[first.holdout_index],
                          training_image=copy):
            fail("holdout images are in the training data",
                 "no holdout image in training_data(), exactly or nearly",
                 f"{len(leaks)}{'+' if len(leaks) == 20 else ''} pairs: "
                 + "; ".join(leak.describe() for leak in leaks[:5]))
