"""``mlprop drift`` and ``mlprop fairness``: exit 0 (fine), 1 (drift / unfair), 2 (bad input
with a one-line reason)."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass

import numpy as np
import pytest

from mlprop import cli
from mlprop.digits.data import load_default_dataset, write_idx
from mlprop.monitor.files import load_vector


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_main(argv: list[str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse rejects bad arguments with exit 2
            code = exc.code
    return Run(code, out.getvalue(), err.getvalue())


def one_line_error(run: Run, command: str) -> str:
    assert run.code == 2, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith(f"mlprop {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Reference / current images as .npy and IDX, labels, and fairness inputs."""
    root = tmp_path_factory.mktemp("monitor")
    images, labels = load_default_dataset()
    # a random split: the data set's order groups writers, and contiguous blocks do drift
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order]
    a, b = images[:800], images[800:1600]
    np.save(root / "ref.npy", a)
    np.save(root / "cur.npy", b)
    write_idx(root / "cur-idx", b)
    np.save(root / "bright.npy", np.clip(b.astype(int) + 60, 0, 255).astype(np.uint8))
    np.save(root / "ref-labels.npy", labels[:800])
    (root / "cur-labels.txt").write_text("\n".join(str(v) for v in labels[800:1600]) + "\n")
    np.save(root / "big.npy", np.zeros((5, 28, 28), np.uint8))
    np.save(root / "float.npy", np.zeros((5, 8, 8), np.float32))
    # fairness: 40 samples, two groups; "fair" predictions equal labels, "unfair" always 1 in b
    fair_labels = np.tile([0, 1], 20)
    groups = np.array(["a"] * 20 + ["b"] * 20)
    np.save(root / "labels.npy", fair_labels)
    np.save(root / "fair.npy", fair_labels)
    np.save(root / "unfair.npy", np.where(groups == "b", 1, fair_labels))
    (root / "groups.txt").write_text("\n".join(groups) + "\n")
    np.save(root / "one-group.npy", np.zeros(40, np.int64))
    np.save(root / "short.npy", fair_labels[:-1])
    np.save(root / "nan.npy", np.where(fair_labels == 1, np.nan, 0.0))
    np.save(root / "objects.npy", np.array([{"a": 1}] * 40, dtype=object), allow_pickle=True)
    return root


# --------------------------------------------------------------------------- drift


def test_drift_demo_finds_a_brightness_shift():
    run = run_main(["drift", "--reference", "digits", "--current", "digits",
                    "--shift", "brightness:0.3"])
    assert run.code == 1, run.err
    assert "current batch corrupted by: brightness:0.3" in run.out
    assert "verdict: drift in mean_intensity" in run.out


def test_drift_demo_without_a_shift_finds_nothing():
    run = run_main(["drift", "--reference", "digits", "--current", "digits", "--seed", "3"])
    assert run.code == 0, run.out
    assert "verdict: no drift" in run.out
    assert "labels" in run.out  # the built-in halves come with labels


def test_drift_json_report():
    run = run_main(["drift", "--reference", "digits", "--current", "digits", "--shift",
                    "rotation:15", "--shift", "noise:0.05", "--json", "--alpha", "0.01",
                    "--correction", "bonferroni"])
    assert run.code == 1
    payload = json.loads(run.out)
    assert payload["drifted"] is True
    assert payload["shifts"] == ["rotation:15", "noise:0.05"]
    assert payload["config"]["alpha"] == 0.01
    assert payload["config"]["correction"] == "bonferroni"
    assert payload["n_reference"] == 898 and payload["n_current"] == 899


def test_drift_psi_threshold_can_silence_tiny_shifts():
    argv = ["drift", "--reference", "digits", "--current", "digits", "--shift",
            "brightness:0.002"]
    assert run_main(argv).code == 1
    assert run_main([*argv, "--psi-threshold", "10"]).code == 0


def test_drift_on_files(files):
    same = run_main(["drift", "--reference", str(files / "ref.npy"), "--current",
                     str(files / "cur-idx"), "--reference-labels",
                     str(files / "ref-labels.npy"), "--current-labels",
                     str(files / "cur-labels.txt")])
    assert same.code == 0, same.out + same.err
    assert "labels" in same.out
    bright = run_main(["drift", "--reference", str(files / "ref.npy"), "--current",
                       str(files / "bright.npy")])
    assert bright.code == 1


def test_drift_file_against_builtin_digits(files):
    run = run_main(["drift", "--reference", "digits", "--current", str(files / "cur.npy")])
    assert run.code == 0, run.out
    assert "labels" not in run.out  # only one side has labels: no label test
    both = run_main(["drift", "--reference", "digits", "--current", str(files / "cur.npy"),
                     "--current-labels", str(files / "cur-labels.txt")])
    assert both.code == 0 and "labels" in both.out


@pytest.mark.parametrize("argv, expected", [
    (["--reference", "nope.npy", "--current", "digits"], "--reference: no such file: nope.npy"),
    (["--reference", "digits", "--current", "{float}", "--shift", "noise:0.1"],
     "--current ({float}): expected uint8 images (N, H, W) in 0..255, got float32"),
    (["--reference", "digits", "--current", "{big}"], "--current ({big}): expected images of "
     "the reference's size 8x8, got 28x28"),
    (["--reference", "{ref}", "--current", "{cur}", "--reference-labels", "{short}",
      "--current-labels", "{short}"], "--reference-labels ({short}): expected 800 values"),
    (["--reference", "{ref}", "--current", "{cur}", "--reference-labels", "{ref_labels}"],
     "--current-labels: expected labels for both batches"),
    (["--reference", "{ref}", "--current", "{cur}", "--reference-labels", "{objects}",
      "--current-labels", "{objects}"], "a .npy array without objects"),
    (["--reference", "{ref}", "--current", "{cur}", "--reference-labels", "missing.txt",
      "--current-labels", "{short}"], "--reference-labels: no such file: missing.txt"),
])
def test_drift_bad_input_is_one_line_naming_the_flag(files, argv, expected):
    names = {"big": files / "big.npy", "ref": files / "ref.npy", "cur": files / "cur.npy",
             "short": files / "short.npy", "ref_labels": files / "ref-labels.npy",
             "objects": files / "objects.npy", "float": files / "float.npy"}
    argv = [arg.format(**names) for arg in argv]
    line = one_line_error(run_main(["drift", *argv]), "drift")
    assert expected.format(**names) in line


@pytest.mark.parametrize("argv", [
    ["--shift", "blur:0.1"], ["--shift", "brightness"], ["--shift", "noise:-1"],
    ["--alpha", "1.5"], ["--correction", "sidak"], ["--psi-threshold", "-1"],
    ["--seed", "-2"],
])
def test_drift_bad_options_exit_2(argv):
    run = run_main(["drift", "--reference", "digits", "--current", "digits", *argv])
    assert run.code == 2
    assert "error" in run.err


# --------------------------------------------------------------------------- fairness


def test_fairness_passes_fair_predictions(files):
    run = run_main(["fairness", "--predictions", str(files / "fair.npy"), "--labels",
                    str(files / "labels.npy"), "--groups", str(files / "groups.txt")])
    assert run.code == 0, run.out + run.err
    assert "verdict: fair within the thresholds" in run.out


def test_fairness_fails_unfair_predictions(files):
    run = run_main(["fairness", "--predictions", str(files / "unfair.npy"), "--labels",
                    str(files / "labels.npy"), "--groups", str(files / "groups.txt"),
                    "--max-dp", "0.2"])
    assert run.code == 1
    assert "demographic_parity_difference = 0.5000, expected <= 0.2" in run.out
    assert "threshold(s) crossed" in run.err


def test_fairness_thresholds_can_be_switched_off_and_json(files):
    run = run_main(["fairness", "--predictions", str(files / "unfair.npy"), "--labels",
                    str(files / "labels.npy"), "--groups", str(files / "groups.txt"),
                    "--max-dp", "none", "--max-eo", "none", "--min-di", "none", "--json"])
    assert run.code == 0, run.out
    payload = json.loads(run.out)
    assert payload["passed"] is True
    assert payload["demographic_parity_difference"] == pytest.approx(0.5)
    assert set(payload["per_group_accuracy"]) == {"a", "b"}


@pytest.mark.parametrize("predictions, groups, expected", [
    ("short.npy", "groups.txt", "--predictions (SHORT): expected 40 values"),
    ("fair.npy", "one-group.npy", "--groups (GROUPS): expected at least two distinct groups"),
    ("nan.npy", "groups.txt", "--predictions (SHORT): expected no missing values, got NaN"),
])
def test_fairness_bad_input_is_one_line_naming_the_flag(files, predictions, groups, expected):
    run = run_main(["fairness", "--predictions", str(files / predictions), "--labels",
                    str(files / "labels.npy"), "--groups", str(files / groups)])
    line = one_line_error(run, "fairness")
    expected = expected.replace("SHORT", str(files / predictions)).replace(
        "GROUPS", str(files / groups))
    assert expected in line


def test_fairness_missing_file_and_bad_limits(files):
    line = one_line_error(run_main(["fairness", "--predictions", "nope.npy", "--labels",
                                    str(files / "labels.npy"), "--groups",
                                    str(files / "groups.txt")]), "fairness")
    assert "--predictions: no such file: nope.npy" in line
    run = run_main(["fairness", "--predictions", "a", "--labels", "b", "--groups", "c",
                    "--max-dp", "2"])
    assert run.code == 2


def test_load_vector_formats(tmp_path):
    (tmp_path / "ints.txt").write_text("1\n2\n\n3\n")
    (tmp_path / "floats.csv").write_text("1.0\nnan\n")
    (tmp_path / "names.txt").write_text("a\n2\nb\n")
    write_idx(tmp_path / "idx", np.array([4, 5], np.uint8))
    assert load_vector(tmp_path / "ints.txt", "--x").tolist() == [1, 2, 3]
    assert np.isnan(load_vector(tmp_path / "floats.csv", "--x")[1])
    assert load_vector(tmp_path / "names.txt", "--x").tolist() == ["a", "2", "b"]
    assert load_vector(tmp_path / "idx", "--x").tolist() == [4, 5]


def test_help_lists_the_subcommands():
    run = run_main(["--help"])
    assert run.code == 0
    assert "drift" in run.out and "fairness" in run.out
