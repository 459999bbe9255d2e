"""The training-path helpers of the ML-mutant worker (mlprop.audit.training_path)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlprop.audit import training_path as tp


@dataclass
class Item:
    path: str
    function: str


def test_split_uses_the_real_path_and_the_qualname(tmp_path: Path):
    (tmp_path / "m.py").write_text("")
    link = tmp_path / "link.py"
    link.symlink_to(tmp_path / "m.py")
    method = Item(str(link), "C.fit")  # a symlinked path names the same file
    other = Item(str(tmp_path / "m.py"), "fit")
    on_path, rest = tp.split_by_training_path(
        [method, other], {(str((tmp_path / "m.py").resolve()), "C.fit")})
    assert on_path == [method] and rest == [other]


def _helper(values):
    return sum(values)


class _Trainer:
    def fit(self):
        return _helper([1, 2])


def test_called_functions_records_the_calls_without_touching_this_process():
    here = os.path.realpath(__file__)
    cache: list[int] = []

    def train():
        cache.append(1)
        return _Trainer().fit()

    called = tp.called_functions(train, {here})
    names = {name for file, name in called}
    assert {"_helper", "_Trainer.fit"} <= names
    assert all(file == here for file, _ in called)
    assert cache == []  # it ran in a child: this process's caches stay empty


def test_called_functions_names_a_failing_training():
    def broken():
        raise ValueError("no data")

    with pytest.raises(RuntimeError, match="training the target's model failed: "
                                           "ValueError: no data"):
        tp.called_functions(broken, set())


def test_callers_are_followed_transitively_and_cycles_end():
    callers = {"m.x_train": ["m.x_trained"], "m.x_trained": ["m.x_predict", "m.x_train"],
               "m.x_predict": []}
    assert tp.callers_of("m.x_train", callers) == {"m.x_trained", "m.x_predict"}
    assert tp.callers_of("m.x_other", callers) == set()


def test_training_path_tests_add_the_models_and_the_callers_tests_fastest_first():
    tests = tp.tests_for_training_path(
        "m.x_train", ["t::shape"], model_keys=["m.x_trained_model"],
        tests_by_key={"m.x_trained_model": ["t::accuracy", "t::shape"],
                      "m.x_predict": ["t::batch"], "m.x_unrelated": ["t::other"]},
        callers={"m.x_train": ["m.x_predict"]},
        durations={"t::accuracy": 3.0, "t::batch": 0.5, "t::shape": 0.1})
    assert tests == ["t::shape", "t::batch", "t::accuracy"]


def _plain(x):
    return x


@functools.wraps(_plain)
def _wrapped(x):
    return _plain(x)


def test_function_keys_of_target_fields():
    assert tp.function_key(_plain) == f"{__name__}.x__plain"
    assert tp.function_key(_wrapped) == f"{__name__}.x__plain"  # unwrapped
    assert tp.function_key(_Trainer().fit) == f"{__name__}.xǁ_Trainerǁfit"
    assert tp.function_key(lambda: 1) is None
    assert tp.function_key(functools.partial(_plain, 1)) is None
    assert tp.mutmut_key("a.b", "C.m") == "a.b.xǁCǁm"


@pytest.mark.parametrize(("name", "plain"), [
    ("x_train__mutmut_orig", "train"),
    ("x_train__mutmut_12", "train"),
    ("Net.xǁNetǁforward__mutmut_orig", "Net.forward"),
    ("xǁNetǁ__init____mutmut_orig", "Net.__init__"),  # from a mutant's key: no head
    ("Net.forward", "Net.forward"),
    ("x_train", "x_train"),
    ("x_train__mutmut_mine", "x_train__mutmut_mine"),
])
def test_plain_qualnames_undo_mutmuts_renaming(name, plain):
    assert tp.plain_qualname(name) == plain
