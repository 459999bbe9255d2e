"""The property report (``--mlprop-report DIR``, ``mlprop check --report DIR``).

Inner pytest sessions run against a catalogue fault planted in the reference target
(``per_batch_normalization``) and only the one property that catches it, so each takes a
few seconds.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from mlprop.checks import assert_close, reproduction
from mlprop.docs_links import property_url
from mlprop.errors import WriteError
from mlprop.report import images as draw
from mlprop.report import output
from mlprop.report.capture import describe_failure, hypothesis_counts
from mlprop.report.output import ReportError, prepare_report_dir, write_report_files

pytest_plugins = ["pytester"]

FAULTY = '''
from mlprop.faults import CATALOGUE
from mlprop.digits import target as _reference

target = CATALOGUE["per_batch_normalization"].inject(_reference)
'''
PROPERTY = "test_preprocess_is_batch_independent"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    for name in ("MLPROP_TARGET", "CI", "MLPROP_PROFILE", "MUTANT_UNDER_TEST",
                 "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_spec():
    from mlprop.checks import CURRENT_SPEC

    saved = dict(CURRENT_SPEC)
    yield
    CURRENT_SPEC.clear()
    CURRENT_SPEC.update(saved)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _inline_pngs(html: str) -> list[bytes]:
    import base64

    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)",
                                                     html)]


# ------------------------------------------------------------------ unit: images, capture


@pytest.mark.parametrize(("shape", "dtype", "drawn"), [
    ((3, 8, 8), np.uint8, (3, 8, 8)), ((2, 1, 28, 28), np.float32, (2, 28, 28)),
    ((2, 3, 5, 5), np.float32, (2, 5, 5, 3)), ((4, 10), np.float64, (1, 4, 10))])
def test_batches_of_every_layout_are_drawn(shape, dtype, drawn):
    array = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    assert draw.as_images(array).shape == drawn
    width, height = _png_size(draw.images_png(array))
    assert height >= draw.TILE and width >= height
    _png_size(draw.heatmap_png(array, diverging=True))


def test_non_image_values_are_not_drawable():
    assert not draw.is_drawable(np.zeros(5))
    assert not draw.is_drawable(np.array(["a", "b"]))
    assert not draw.is_drawable(np.zeros((0, 8, 8)))


def test_a_failing_comparison_is_captured_as_the_pair_and_their_difference():
    images = np.zeros((2, 8, 8), np.uint8)
    changed = images.copy()
    changed[1, 2:4, 2:4] = 200
    with pytest.raises(AssertionError) as info, reproduction("t", images=images, seed=3):
        assert_close(changed, images, "not the identity")
    assert info.value.mlprop_example["images"] is images  # a reference, never a copy
    failure = describe_failure(info.value, component="augment")
    titles = [f["title"] for f in failure["figures"]]
    assert titles == ["input: images", "actual", "expected", "|actual - expected|"]
    assert "4 of 128 values differ" in failure["figures"][-1]["caption"]
    assert failure["example"] == {"images": "array(shape=(2, 8, 8), dtype=uint8)",
                                  "seed": "3"}
    assert all(f["uri"].startswith("data:image/png;base64,") for f in failure["figures"])


def test_hypothesis_counts_examples_and_shrinks():
    stats = {"generate-phase": {"test-cases": [{"status": "valid"}] * 5
                                + [{"status": "invalid"}, {"status": "interesting"}]},
             "shrink-phase": {"test-cases": [{"status": "valid"}] * 7}}
    assert hypothesis_counts(stats) == {"examples": 6, "invalid": 1, "shrinks": 7}


# ------------------------------------------------------------------ the report directory


def test_a_directory_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="cannot be created"):
        prepare_report_dir(tmp_path / "file" / "report")
    with pytest.raises(ReportError, match="is a file"):
        prepare_report_dir(tmp_path / "file")


def test_another_runs_report_is_kept_unless_forced(tmp_path):
    (tmp_path / "summary.md").write_text("previous run")
    with pytest.raises(ReportError, match=r"already holds a report \(summary.md\).*--force"):
        prepare_report_dir(tmp_path)
    assert prepare_report_dir(tmp_path, force=True) == tmp_path.resolve()


def test_a_failed_write_leaves_no_half_written_report(tmp_path, monkeypatch):
    real = output.atomic_write_bytes

    def fail_on_html(path, data):
        if path.name == "report.html":
            real(path, data[:10])  # what a crash would leave if writes were not atomic ...
            raise WriteError(path, "No space left on device (ENOSPC)")
        return real(path, data)

    (tmp_path / "report.html").write_text("old")
    monkeypatch.setattr(output, "atomic_write_bytes", fail_on_html)
    with pytest.raises(WriteError):
        write_report_files(tmp_path, {"report.html": "<html>new</html>", "summary.md": "s"})
    monkeypatch.setattr(output, "atomic_write_bytes", real)
    write_report_files(tmp_path / "..", {})  # nothing to write is fine
    assert (tmp_path / "summary.md").read_text() == "s"  # report.html is written last


# ------------------------------------------------------------------ inner sessions


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(faulty_target=FAULTY)
    pytester.syspathinsert()
    return pytester.runpytest("-p", "no:cacheprovider", "-W",
                              "ignore::pytest.PytestAssertRewriteWarning", "--pyargs",
                              "mlprop.properties.test_preprocess", "--mlprop-target",
                              "faulty_target:target", "--mlprop-profile", "ci", *args)


def test_report_of_a_failing_property_draws_its_shrunk_example(pytester, monkeypatch,
                                                               tmp_path):
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report = tmp_path / "report"
    result = _run(pytester, "-k", f"{PROPERTY} or test_preprocess_is_deterministic",
                  "--mlprop-report", str(report))
    result.assert_outcomes(failed=1, passed=1)
    html = (report / "report.html").read_text()
    results = json.loads((report / "results.json").read_text())
    assert results["counts"]["failed"] == 1 and results["counts"]["passed"] == 1
    assert results["target"]["spec"] == "faulty_target:target"
    assert results["profile"] == "mlprop-ci" and results["versions"]["torch"]
    entry = results["failures"][0]
    assert entry["name"] == PROPERTY and entry["component"] == "preprocess"
    assert entry["examples"] >= 1
    failure = entry["failure"]
    assert "batch-dependent" in failure["message"]
    assert failure["doc"].startswith("Row i of preprocess(batch) equals preprocess(image i")
    assert failure["blob"].startswith("@reproduce_failure(")
    assert f"{PROPERTY}' -p no:cacheprovider --mlprop-target faulty_target:target " \
           "--mlprop-profile ci" in failure["replay"]
    assert "per_batch_normalization" in [c["name"] for c in failure["likely_causes"]]
    assert [f["title"] for f in failure["figures"]][:1] == ["input: images"]
    assert "uri" not in failure["figures"][0]  # the pixels live in report.html only
    pngs = _inline_pngs(html)
    assert len(pngs) == len(failure["figures"]) >= 2
    for png in pngs:
        _png_size(png)
    # self-contained: the only URLs are the links of the property names to their reference
    links = {property_url(PROPERTY), property_url("test_preprocess_is_deterministic")}
    assert set(re.findall(r'href="(https?://[^"]*)"', html)) == links
    offline = html
    for link in links:
        offline = offline.replace(link, "")
    assert "http://" not in offline and "https://" not in offline and "<script" not in html
    assert "Likely causes" in html and "per_batch_normalization" in html
    md = (report / "summary.md").read_text()
    assert "| preprocess | 1 | 1 | 0 |" in md
    assert f"- **[{PROPERTY}]({property_url(PROPERTY)})** (preprocess): " in md
    assert "component augment: no property of it ran" in md
    assert summary.read_text().startswith("earlier step\n## mlprop check")


def test_report_refuses_another_runs_directory_before_running(pytester, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.html").write_text("previous")
    result = _run(pytester, "-k", PROPERTY, "--mlprop-report", str(report))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "already holds a report" in "\n".join(result.errlines)
    assert (report / "report.html").read_text() == "previous"


def _mlprop(*args: str, cwd, env=None) -> subprocess.CompletedProcess:
    """``mlprop`` in a fresh interpreter (an in-process command after an in-process inner
    session that failed a property crashed the garbage collector of CPython 3.11)."""
    return subprocess.run([sys.executable, "-m", "mlprop.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_check_command_with_an_unwritable_report_dir_exits_2(tmp_path):
    (tmp_path / "file").write_text("x")
    result = _mlprop("check", "--report", str(tmp_path / "file" / "r"), "--", "-k", PROPERTY,
                     cwd=tmp_path)
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot be created" in err[0], result.stderr
    assert "collected" not in result.stdout  # stopped before pytest started


def test_check_command_writes_the_report_and_keeps_it(tmp_path):
    (tmp_path / "faulty_target.py").write_text(FAULTY)
    env = {"PYTHONPATH": str(tmp_path)}
    args = ("check", "--target", "faulty_target:target", "--report", "out", "--", "-k",
            PROPERTY, "--mlprop-profile", "ci")
    result = _mlprop(*args, cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["counts"]["failed"] == 1
    again = _mlprop(*args, cwd=tmp_path, env=env)
    assert again.returncode == 2 and "--force" in again.stderr
