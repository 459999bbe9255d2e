"""Fuzz the remaining input boundaries: target spec strings, the reviewed-equivalents TOML,
benchmark JSON; and ``mlprop predict`` on a malformed .npy (exit 2, one line on stderr).

Oracle: a valid result or an ``MlpropError`` naming the input. Budget:
``MLPROP_FUZZ_EXAMPLES`` (``tests/fuzzing.py``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mlprop.audit.report import load_equivalents
from mlprop.digits import artifacts
from mlprop.digits.model import build_model
from mlprop.errors import MlpropError, TargetError
from mlprop.target import Target, load_target
from tests.fuzzing import STATS, WORKDIR, check_reader, fuzz_settings, mutations

# --------------------------------------------------------------------------- target specs

SAFE_MODULES = ["mlprop", "mlprop.digits", "mlprop.target", "mlprop.errors", "json",
                "tests.alt_targets", "mlprop_no_such_module", "mlprop.no_such"]


def importable_side_effects(spec: str) -> bool:
    """Whether importing the spec's module could run code we did not choose (``this``,
    ``antigravity``...): only the safe list and names that do not exist are imported."""
    module = spec.partition(":")[0]
    if module in SAFE_MODULES or not module or module.startswith("."):
        return False
    top = module.split(".")[0]
    try:
        return top in SAFE_MODULES or importlib.util.find_spec(top) is not None
    except (ValueError, ImportError):
        return False


SPECS = st.one_of(
    st.text(max_size=30),
    st.builds(lambda m, a: f"{m}:{a}", st.sampled_from(SAFE_MODULES),
              st.sampled_from(["target", "", "x", "__name__", "Target", "a:b", "."])
              | st.text(max_size=10)),
    st.builds(lambda s, i, c: s[:i] + c + s[i:], st.just("mlprop.digits:target"),
              st.integers(0, 20), st.sampled_from([":", ".", " ", "\x00", "..", "é"])),
)


def record(outcome: str) -> None:
    stats = STATS["target spec"]
    stats["examples"] += 1
    stats["outcomes"][outcome] += 1


@fuzz_settings(1)
@given(spec=SPECS)
def test_fuzz_target_spec(spec: str):
    assume(not importable_side_effects(spec) or spec.partition(":")[0] in SAFE_MODULES)
    try:
        target = load_target(spec)
    except TargetError as exc:
        assert repr(spec) in str(exc) or "target spec" in str(exc), str(exc)
        record("error: TargetError")
    else:
        assert isinstance(target, Target)
        record("valid")


# --------------------------------------------------------------------------- TOML

EQUIVALENTS = Path(__file__).parents[1] / "equivalent_mutants.toml"
TOML_SEEDS = [EQUIVALENTS.read_bytes()[:1500],
              b'[mutmut]\n"a.b.x_f__mutmut_1" = "reason"\n[ml]\nm1 = "why"\n']


@fuzz_settings(2)
@given(data=st.sampled_from(TOML_SEEDS).flatmap(lambda seed: mutations(seed, header=200)))
def test_fuzz_equivalents_bytes(data: bytes):
    path = WORKDIR / "equivalents.toml"
    path.write_bytes(data)
    check_reader("equivalents toml", load_equivalents, path)


TOML_VALUES = st.sampled_from(['"one line"', '""', '"a\\nb"', "3", "[1, 2]", "{ x = 1 }",
                               "true", "1979-05-27", '"""\nx"""'])


@fuzz_settings(2)
@given(tables=st.lists(st.tuples(st.sampled_from(["mutmut", "ml", "other", "mutmut.sub"]),
                                 st.lists(st.tuples(st.text(max_size=8), TOML_VALUES),
                                          max_size=3)), max_size=3),
       top=st.lists(st.tuples(st.sampled_from(["mutmut", "ml", "x"]), TOML_VALUES),
                    max_size=2))
def test_fuzz_equivalents_structure(tables: list[tuple[str, list[tuple[str, str]]]],
                                    top: list[tuple[str, str]]):
    lines = [f"{key} = {value}" for key, value in top]
    for table, entries in tables:
        lines.append(f"[{table}]")
        lines += [f"{json.dumps(name)} = {value}" for name, value in entries]
    path = WORKDIR / "generated.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    check_reader("equivalents toml", load_equivalents, path)


# --------------------------------------------------------------------------- bench JSON

BENCH_SEED = json.dumps({"benchmarks": [
    {"name": "test_a", "fullname": "b.py::test_a",
     "stats": {"median": 0.5, "mean": 0.6, "min": 0.4, "data": [0.4, 0.5, 0.6]}}],
    "mlprop": {"sources": {"mlprop": "/x/src/mlprop/__init__.py"}}}).encode()


@fuzz_settings(1)
@given(data=mutations(BENCH_SEED, header=len(BENCH_SEED)))
def test_fuzz_benchmark_json(data: bytes):
    from mlprop import bench

    path = WORKDIR / "bench.json"
    path.write_bytes(data)
    check_reader("benchmark json", lambda p: (bench.read_times(p, "trimmed"),
                                              bench.read_sources(p)), path)


# --------------------------------------------------------------------------- predict CLI


def test_predict_on_a_malformed_npy_exits_2_with_one_line(tmp_path: Path):
    model = artifacts.save_package(tmp_path / "model", build_model(0), architecture="DigitCNN",
                                   metrics={}, schema={}, preprocessing={}, seed=0)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '|u1', 'fortran_order': False, "
                    b"'shape': (99999999, 28, 28), }\n" + b"\x00" * 16)
    done = subprocess.run([sys.executable, "-m", "mlprop.cli", "predict", "--model",
                           str(model), str(bad)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert str(bad) in lines[0] and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_target_spec_errors_are_mlprop_errors():
    with pytest.raises(MlpropError):
        load_target("mlprop_no_such_module:target")
