"""Exact behaviour of ``mlprop.digits.artifacts`` and ``mlprop.digits.evaluate`` that the
mutation audit showed untested: error reasons, cleanup failures, library versions, the
metrics dictionary and the dtype checks of the confusion matrix."""

from __future__ import annotations

import json
import locale
import os
from pathlib import Path

import numpy as np
import pytest
import safetensors
from torch import nn

from mlprop import PackageIntegrityError
from mlprop.digits import artifacts
from mlprop.digits.artifacts import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    library_versions,
    load_package,
    read_manifest,
    save_package,
)
from mlprop.digits.evaluate import Metrics, confusion_matrix, evaluate
from mlprop.digits.model import DigitCNN, build_model


def save(directory: Path, model: nn.Module | None = None) -> Path:
    return save_package(directory, model if model is not None else build_model(0),
                        architecture="DigitCNN", metrics={}, schema={}, preprocessing={},
                        seed=0)


def reason(directory: Path) -> tuple[str, str]:
    with pytest.raises(PackageIntegrityError) as exc:
        load_package(directory, DigitCNN)
    return exc.value.path, exc.value.reason


def test_library_versions_name_safetensors_or_say_unknown(monkeypatch):
    assert library_versions()["safetensors"] == safetensors.__version__
    monkeypatch.delattr(safetensors, "__version__")
    assert library_versions()["safetensors"] == "unknown"


def test_a_file_in_the_way_is_refused_naming_it(tmp_path):
    path = tmp_path / "pkg"
    path.write_text("not a package")
    with pytest.raises(PackageIntegrityError) as exc:
        save(path)
    assert (exc.value.path, exc.value.reason) == (
        str(path), "exists and is not a package directory; refusing to replace it")


def test_a_failed_install_of_a_fresh_package_raises_its_own_error(tmp_path, monkeypatch):
    real_replace = os.replace

    def failing(src, dst):
        if Path(src).name.startswith(".pkg.tmp-"):
            raise OSError("install failed")
        return real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", failing)
    with pytest.raises(OSError, match="install failed"):
        save(tmp_path / "pkg")
    assert list(tmp_path.iterdir()) == []


def test_cleanup_failures_never_hide_the_outcome(tmp_path, monkeypatch):
    """Removing the retired package (after success) or the staging directory (after a
    failure) is best effort: an error there must neither fail a good save nor replace the
    error of a failed one."""
    out = save(tmp_path / "pkg")

    def cannot_delete(*args, **kwargs):
        raise PermissionError("cannot delete")

    monkeypatch.setattr(os, "unlink", cannot_delete)
    save(out, build_model(1))  # replaced; the old copy cannot be removed: still fine
    monkeypatch.undo()
    read_manifest(out)

    monkeypatch.setattr(os, "unlink", cannot_delete)

    def write_then_fail(path, data):
        Path(path).write_bytes(data)
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "_write_synced", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "other")


def test_manifest_problems_have_exact_reasons(tmp_path):
    missing = tmp_path / "missing"
    assert reason(missing) == (str(missing), "no such package directory")
    out = save(tmp_path / "pkg")
    manifest_path = out / MANIFEST_FILE
    text = manifest_path.read_text()
    manifest_path.unlink()
    assert reason(out) == (str(manifest_path), "manifest is missing (incomplete package)")
    manifest_path.write_text("[1, 2]")
    assert reason(out) == (str(manifest_path), "manifest is not a JSON object")
    manifest = json.loads(text)
    manifest_path.write_text(json.dumps({**manifest, "format_version": 99}))
    assert reason(out) == (str(manifest_path),
                           "format_version 99 is not supported (expected 1)")
    manifest_path.write_text(json.dumps({**manifest, "weights": {"file": WEIGHTS_FILE}}))
    assert reason(out) == (str(manifest_path),
                           "manifest 'weights' needs file, sha256 and bytes")
    manifest_path.write_text(text)
    (out / WEIGHTS_FILE).unlink()
    assert reason(out) == (str(out / WEIGHTS_FILE), "weights file is missing")


def test_manifest_is_read_as_utf8_whatever_the_locale(tmp_path):
    out = save_package(tmp_path / "pkg", build_model(0), architecture="DigitCNN", metrics={},
                       schema={}, preprocessing={}, seed=0, extra={"data": "Zürich ✓"})
    (out / MANIFEST_FILE).write_text(  # non-ASCII bytes in the file itself
        (out / MANIFEST_FILE).read_text(encoding="utf-8").replace("\\u00fc", "ü"),
        encoding="utf-8")
    previous = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale, as in a bare container
        manifest = read_manifest(out)
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)
    assert manifest["data"] == "Zürich ✓"


def test_wrong_architecture_reason_is_the_first_line_of_torchs_error(tmp_path):
    out = save(tmp_path / "wide", DigitCNN(width=8))
    _, why = reason(out)
    assert why.startswith("weights do not fit DigitCNN: Error(s) in loading state_dict for "
                          "DigitCNN:")
    assert "\n" not in why


# --------------------------------------------------------------------------- evaluate


def test_metrics_dictionary_has_exactly_the_documented_keys():
    labels = np.array([0, 1, 1, 2])
    metrics = evaluate(labels, np.array([0, 1, 2, 2]), 3)
    summary = metrics.as_dict()
    assert sorted(summary) == ["accuracy", "confusion", "f1", "macro_f1", "macro_precision",
                               "macro_recall", "precision", "recall"]
    assert summary["macro_precision"] == pytest.approx(metrics.macro_precision)
    assert summary["macro_recall"] == pytest.approx(metrics.macro_recall)
    assert isinstance(metrics, Metrics)


@pytest.mark.parametrize("which", ["labels", "predictions"])
def test_float_class_indices_are_refused_naming_the_argument(which):
    good, bad = np.array([0, 1]), np.array([0.0, 1.0])
    args = {"labels": good, "predictions": good, which: bad}
    with pytest.raises(ValueError) as exc:
        confusion_matrix(args["labels"], args["predictions"], 2)
    assert str(exc.value) == f"{which} must be integer class indices, got dtype float64"


def test_empty_float_inputs_are_an_empty_confusion_matrix():
    empty = np.array([], dtype=np.float64)
    np.testing.assert_array_equal(confusion_matrix(empty, empty, 3), np.zeros((3, 3)))
