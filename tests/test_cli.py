"""Tests of the ``mlprop`` command (``mlprop.cli.main``), run in-process.

Exit codes: 0 success, 1 a check failed, 2 a usage or input error with a one-line reason on
stderr. One test runs the installed console script in a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlprop import cli, suite
from mlprop.cli import check as check_command
from mlprop.digits import pipeline
from mlprop.digits.artifacts import MANIFEST_FILE, WEIGHTS_FILE, load_package, read_manifest
from mlprop.digits.data import load_default_dataset, write_idx

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 200


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_main(argv: list[str]) -> Run:
    """``cli.main(argv)`` with stdout/stderr captured (usable outside capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return Run(code, out.getvalue(), err.getvalue())


def one_line_error(err: str, command: str) -> str:
    """Assert ``err`` is exactly one ``mlprop COMMAND: error: ...`` line; return it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mlprop {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    """Never let a test touch ~/.cache: point the model cache at a temp dir."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPROP_CACHE_DIR", str(tmp_path_factory.mktemp("mlprop-cache")))
        yield


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory) -> Path:
    """A tiny MNIST-like IDX directory: 200 digits upscaled 8x8 -> 24x24, padded to 28x28."""
    images, labels = load_default_dataset()
    images, labels = images[:N_IMAGES], labels[:N_IMAGES]
    big = np.kron(images, np.ones((1, 3, 3), np.uint8))
    big = np.pad(big, ((0, 0), (2, 2), (2, 2)))
    directory = tmp_path_factory.mktemp("mnist")
    write_idx(directory / "train-images-idx3-ubyte", big)
    write_idx(directory / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    return directory


@pytest.fixture(scope="module")
def trained(mnist_dir: Path, tmp_path_factory) -> tuple[Run, Path]:
    """``mlprop train --data DIR --epochs 1 --out OUT``, run once for the module."""
    out = tmp_path_factory.mktemp("train") / "pkg"
    run = run_main(["train", "--data", str(mnist_dir), "--epochs", "1", "--out", str(out)])
    return run, out


@pytest.fixture
def package(trained, tmp_path: Path) -> Path:
    """A private copy of the trained package (safe to tamper with)."""
    _, out = trained
    return Path(shutil.copytree(out, tmp_path / "pkg"))


def sample_images(count: int, side: int = 28) -> np.ndarray:
    images, _ = load_default_dataset()
    big = np.kron(images[N_IMAGES:N_IMAGES + count], np.ones((1, 3, 3), np.uint8))
    return np.pad(big, ((0, 0), (2, 2), (2, 2)))[:, :side, :side]


# ------------------------------------------------------------------- train


def test_train_on_idx_dir_prints_metrics_and_package_path(trained):
    run, out = trained
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert [line.split()[0] for line in lines[1:11]] == [str(c) for c in range(10)]
    assert lines[11].split()[0] == "macro"
    assert int(lines[11].split()[-1]) > 0  # test-split support
    assert lines[12].startswith("accuracy ")
    assert 0.0 <= float(lines[12].split()[1]) <= 1.0
    assert lines[-1].startswith(f"model package: {out} (")
    assert lines[-1].endswith(" bytes)")


def test_train_reports_progress_on_stderr(trained, mnist_dir: Path):
    run, _ = trained
    assert f"training on {mnist_dir}:" in run.err
    assert "epoch   1/1" in run.err
    assert "val_accuracy" in run.err
    assert "epoch" not in run.out


def test_train_writes_a_loadable_package(trained, mnist_dir: Path):
    _, out = trained
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_FILE, WEIGHTS_FILE])
    model, manifest = load_package(out, pipeline.model_dimensions)
    assert manifest["train_config"]["epochs"] == 1
    assert manifest["data"] == str(mnist_dir)
    assert manifest["architecture"] == "DigitCNN"
    assert set(manifest["metrics"]) >= {"accuracy", "precision", "recall", "f1", "confusion"}
    assert not model.training


def test_train_with_missing_data_dir_exits_2_naming_it(tmp_path: Path):
    missing = tmp_path / "nonexistent"
    run = run_main(["train", "--data", str(missing), "--epochs", "1",
                    "--out", str(tmp_path / "pkg")])
    assert run.code == 2
    assert str(missing) in one_line_error(run.err, "train")
    assert run.out == ""
    assert not (tmp_path / "pkg").exists()


def test_train_with_dir_lacking_idx_files_exits_2(tmp_path: Path):
    run = run_main(["train", "--data", str(tmp_path), "--epochs", "1",
                    "--out", str(tmp_path / "pkg")])
    assert run.code == 2
    assert "train-images-idx3-ubyte" in one_line_error(run.err, "train")


def test_train_with_corrupt_idx_exits_2_naming_the_file(mnist_dir: Path, tmp_path: Path):
    data = Path(shutil.copytree(mnist_dir, tmp_path / "data"))
    images = data / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    run = run_main(["train", "--data", str(data), "--epochs", "1",
                    "--out", str(tmp_path / "pkg")])
    assert run.code == 2
    assert str(images) in one_line_error(run.err, "train")


@pytest.mark.parametrize(
    "argv",
    [["train", "--epochs", "0"], ["train", "--epochs", "-3"], ["train", "--epochs", "many"],
     ["train", "--seed", "-1"], ["train", "--bogus"], [], ["frobnicate"],
     ["predict", "x.npy"], ["predict", "--model", "pkg"]],
    ids=["epochs-0", "epochs-negative", "epochs-text", "seed-negative", "unknown-option",
         "no-command", "unknown-command", "predict-no-model", "predict-no-files"],
)
def test_bad_usage_is_an_argparse_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "usage: mlprop" in captured.err
    assert captured.out == ""


def test_epochs_0_message_says_what_is_expected(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err


# ------------------------------------------------------------------- predict


def test_predict_json_gives_class_and_probability_per_image(package: Path, tmp_path: Path,
                                                            capsys):
    npy = tmp_path / "batch.npy"
    np.save(npy, sample_images(3))
    png = tmp_path / "one.png"
    Image.fromarray(sample_images(1)[0], mode="L").save(png)
    code = cli.main(["predict", "--model", str(package), "--json", str(npy), str(png)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    assert [(row["file"], row["index"]) for row in rows] == [
        (str(npy), 0), (str(npy), 1), (str(npy), 2), (str(png), 0)]
    for row in rows:
        assert set(row) == {"file", "index", "class", "probability"}
        assert isinstance(row["class"], int) and 0 <= row["class"] <= 9
        assert 0.1 <= row["probability"] <= 1.0  # top of 10 classes is at least 1/10


def test_predict_agrees_with_the_serving_path(package: Path, tmp_path: Path, capsys):
    images = sample_images(4)
    npy = tmp_path / "batch.npy"
    np.save(npy, images)
    assert cli.main(["predict", "--model", str(package), "--json", str(npy)]) == 0
    rows = json.loads(capsys.readouterr().out)
    model, _ = load_package(package, pipeline.model_dimensions)
    expected = pipeline.probabilities(model, images)
    assert [row["class"] for row in rows] == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose([row["probability"] for row in rows], expected.max(axis=1),
                               rtol=1e-6)


def test_predict_text_output_one_line_per_image(package: Path, tmp_path: Path, capsys):
    idx = write_idx(tmp_path / "images-idx3-ubyte.gz", sample_images(2))
    assert cli.main(["predict", "--model", str(package), str(idx)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for index, line in enumerate(lines):
        assert line.startswith(f"{idx}[{index}]: ")
        assert "(p=" in line


def test_predict_with_tampered_package_exits_2_naming_the_file(package: Path,
                                                               tmp_path: Path, capsys):
    weights = package / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    npy = tmp_path / "batch.npy"
    np.save(npy, sample_images(1))
    code = cli.main(["predict", "--model", str(package), str(npy)])
    captured = capsys.readouterr()
    assert code == 2
    line = one_line_error(captured.err, "predict")
    assert str(weights) in line
    assert "SHA-256" in line
    assert captured.out == ""


def test_predict_with_incomplete_package_exits_2(package: Path, tmp_path: Path, capsys):
    (package / MANIFEST_FILE).unlink()
    npy = tmp_path / "batch.npy"
    np.save(npy, sample_images(1))
    assert cli.main(["predict", "--model", str(package), str(npy)]) == 2
    assert str(package / MANIFEST_FILE) in one_line_error(capsys.readouterr().err, "predict")


def test_predict_with_missing_package_exits_2(tmp_path: Path, capsys):
    npy = tmp_path / "batch.npy"
    np.save(npy, sample_images(1))
    assert cli.main(["predict", "--model", str(tmp_path / "nope"), str(npy)]) == 2
    assert str(tmp_path / "nope") in one_line_error(capsys.readouterr().err, "predict")


def test_predict_on_too_small_image_exits_2_naming_the_field(package: Path, tmp_path: Path,
                                                             capsys):
    npy = tmp_path / "tiny.npy"
    np.save(npy, np.zeros((4, 4), np.uint8))
    assert cli.main(["predict", "--model", str(package), str(npy)]) == 2
    captured = capsys.readouterr()
    line = one_line_error(captured.err, "predict")
    assert str(npy) in line
    assert "images.height" in line
    assert "images.width" in line
    assert captured.out == ""


def test_predict_on_float_images_exits_2_naming_dtype(package: Path, tmp_path: Path, capsys):
    npy = tmp_path / "float.npy"
    np.save(npy, sample_images(1).astype(np.float32))
    assert cli.main(["predict", "--model", str(package), str(npy)]) == 2
    line = one_line_error(capsys.readouterr().err, "predict")
    assert str(npy) in line
    assert "images.dtype" in line


@pytest.mark.parametrize("content", [b"", b"not an image at all"], ids=["empty", "garbage"])
def test_predict_on_unreadable_file_exits_2(package: Path, tmp_path: Path, capsys,
                                            content: bytes):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(content)
    assert cli.main(["predict", "--model", str(package), str(bad)]) == 2
    assert str(bad) in one_line_error(capsys.readouterr().err, "predict")


def test_predict_on_missing_file_exits_2_naming_it(package: Path, tmp_path: Path, capsys):
    missing = tmp_path / "missing.png"
    assert cli.main(["predict", "--model", str(package), str(missing)]) == 2
    assert str(missing) in one_line_error(capsys.readouterr().err, "predict")


# ------------------------------------------------------------------- check / demo


@pytest.mark.parametrize(("pytest_code", "expected"), [(0, 0), (1, 1), (5, 1), (2, 2), (4, 2)])
def test_check_maps_pytest_exit_codes(monkeypatch, capsys, tmp_path: Path, pytest_code: int,
                                      expected: int):
    monkeypatch.chdir(tmp_path)  # the user's project: the suite runs there, installed
    commands = []

    def fake_call(command, cwd):
        commands.append((command, cwd))
        return pytest_code

    monkeypatch.setattr(suite.subprocess, "call", fake_call)
    assert cli.main(["check", "--target", "pkg.mod:target", "--", "-k", "x", "--stats"]) \
        == expected
    ((command, cwd),) = commands
    assert command[:5] == [sys.executable, "-m", "pytest", "--pyargs", "mlprop.properties"]
    assert command[command.index("--mlprop-target") + 1] == "pkg.mod:target"
    assert command[-2:] == ["-k", "x"]
    assert "--stats" not in command
    assert "--hypothesis-show-statistics" in command
    assert cwd == tmp_path
    assert capsys.readouterr().err.startswith("mlprop check: ")


def test_check_without_property_suite_exits_2(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setitem(sys.modules, "mlprop.properties", None)  # a broken installation
    assert cli.main(["check"]) == 2
    assert "property suite not found" in one_line_error(capsys.readouterr().err, "check")


def test_check_with_empty_selection_exits_1(capfd):
    """A real pytest run that selects nothing (pytest exit 5) is a failed check (exit 1)."""
    code = cli.main(["check", "--", "-k", "some_nonexistent_name_xyzzy"])
    captured = capfd.readouterr()
    assert code == 1, captured.out + captured.err
    assert "no property ran" in captured.err


def test_demo_stops_at_a_train_error_without_checking(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setattr(check_command, "run_property_suite",
                        lambda *a: pytest.fail("check must not run after a failed train"))
    assert cli.main(["demo", "--data", str(tmp_path / "nope"), "--epochs", "1"]) == 2
    one_line_error(capsys.readouterr().err, "demo")


def test_demo_trains_then_checks_the_default_target(monkeypatch, mnist_dir: Path,
                                                    tmp_path: Path, capsys):
    calls = []
    monkeypatch.setattr(check_command, "run_property_suite",
                        lambda target, extra: calls.append((target, list(extra))) or 1)
    out = tmp_path / "pkg"
    code = cli.main(["demo", "--data", str(mnist_dir), "--epochs", "1", "--out", str(out)])
    assert code == 1  # the check's verdict is the demo's exit code
    assert calls == [(None, [])]
    assert read_manifest(out)["train_config"]["epochs"] == 1
    assert "model package: " in capsys.readouterr().out


# ------------------------------------------------------------------- console script


def test_installed_console_script_help():
    script = Path(sys.executable).parent / "mlprop"
    if not script.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: mlprop")
    for command in ("train", "predict", "check", "demo"):
        assert command in result.stdout


def test_a_closed_stdout_pipe_gives_no_traceback():
    """`mlprop drift --json | head`: the reader leaving early must not print a traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mlprop.cli", "drift", "--reference", "digits",
             "--current", "digits", "--json"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
