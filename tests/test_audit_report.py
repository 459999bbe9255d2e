"""The audit's report: mutmut .meta parsing, equivalents, scores, rendering (no mutmut run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlprop.audit import report as rep


def write_meta(root: Path, source: str, codes: dict, durations: dict | None = None) -> Path:
    meta = root / "mutants" / f"{source}.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({
        "exit_code_by_key": codes,
        "hash_by_function_name": {},
        "type_check_error_by_key": {},
        "durations_by_key": durations or {},
        "estimated_durations_by_key": {},
    }))
    return meta


SAMPLE = {
    "mlprop.digits.train.x_train__mutmut_1": 1,
    "mlprop.digits.train.x_train__mutmut_2": 0,
    "mlprop.digits.train.x_train__mutmut_10": 36,
    "mlprop.digits.train.xǁTrainConfigǁdigest__mutmut_1": 33,
    "mlprop.digits.train.x_train__mutmut_3": None,
    "mlprop.digits.train.x_train__mutmut_4": 3,
    "mlprop.digits.train.x_train__mutmut_5": 34,
    "mlprop.digits.train.x_train__mutmut_6": -9,
    "mlprop.digits.train.x_train__mutmut_7": 99,
}


def test_exit_codes_map_to_mutmut_statuses():
    assert rep.status_of(1) == rep.status_of(3) == "killed"
    assert rep.status_of(0) == "survived"
    assert rep.status_of(5) == rep.status_of(33) == "no tests"
    assert all(rep.status_of(c) == "timeout" for c in (36, 24, -24, 152, 255))
    assert rep.status_of(34) == "skipped"
    assert rep.status_of(None) == "not checked"
    assert rep.status_of(-11) == "segfault"
    assert rep.status_of(12345) == "suspicious"


def test_meta_file_is_read_in_natural_mutant_order(tmp_path):
    write_meta(tmp_path, "src/mlprop/digits/train.py", SAMPLE,
               {"mlprop.digits.train.x_train__mutmut_1": 0.5})
    outcomes = rep.read_mutmut_results(tmp_path, ["src/mlprop/digits/train.py",
                                                  "src/mlprop/digits/absent.py"])
    names = [o.name.rpartition(".")[2] for o in outcomes]
    assert names.index("x_train__mutmut_2") < names.index("x_train__mutmut_10")
    first = next(o for o in outcomes if o.name.endswith("x_train__mutmut_1"))
    assert (first.module, first.status, first.seconds) == ("mlprop.digits.train", "killed", 0.5)
    assert first.function == "x_train"
    method = next(o for o in outcomes if "digest" in o.name)
    assert method.function == "xǁTrainConfigǁdigest" and method.status == "no tests"


def test_a_meta_without_exit_codes_is_refused(tmp_path):
    meta = tmp_path / "x.meta"
    meta.write_text(json.dumps({"something": 1}))
    with pytest.raises(ValueError, match="exit_code_by_key"):
        rep.read_meta(meta, "src/x.py")
    meta.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        rep.read_meta(meta, "src/x.py")


def test_score_counts_timeouts_as_detected_and_skips_skipped_and_equivalent(tmp_path):
    write_meta(tmp_path, "src/mlprop/digits/train.py", SAMPLE)
    outcomes = rep.read_mutmut_results(tmp_path, ["src/mlprop/digits/train.py"])
    reviewed = {"mlprop.digits.train.x_train__mutmut_2": "same output for every input"}
    marked, stale = rep.apply_equivalents(outcomes, reviewed)
    assert stale == []
    overall, modules = rep.summarize(marked)
    counts = overall.as_dict()
    assert counts["total"] == 9
    assert (counts["killed"], counts["timeout"], counts["equivalent"], counts["skipped"]) == (
        2, 1, 1, 1)
    # scored = 9 - skipped - equivalent = 7; detected = 2 killed + 1 timeout
    assert overall.score == pytest.approx(100 * 3 / 7)
    assert list(modules) == ["mlprop.digits.train"]
    equivalent = next(o for o in marked if o.status == "equivalent")
    assert equivalent.reason == "same output for every input"


def test_stale_equivalents_are_reported_and_not_applied(tmp_path):
    write_meta(tmp_path, "src/mlprop/digits/train.py", SAMPLE)
    outcomes = rep.read_mutmut_results(tmp_path, ["src/mlprop/digits/train.py"])
    reviewed = {"mlprop.digits.train.x_train__mutmut_1": "killed now: renumbered?",
                "mlprop.digits.train.x_gone__mutmut_1": "function was removed"}
    marked, stale = rep.apply_equivalents(outcomes, reviewed)
    assert stale == ["mlprop.digits.train.x_gone__mutmut_1",
                     "mlprop.digits.train.x_train__mutmut_1"]
    assert not any(o.status == "equivalent" for o in marked)


def test_nothing_scored_gives_no_score():
    assert rep.tally([]).score is None
    assert rep.tally(["skipped", "equivalent"]).score is None
    assert rep.format_score(None) == "n/a"


def test_equivalents_file_needs_one_line_reasons(tmp_path):
    good = tmp_path / "eq.toml"
    good.write_text('[mutmut]\n"a.x_f__mutmut_1" = "  dead store  "\n[ml]\n"a:f:dim:1" = "why"\n')
    loaded = rep.load_equivalents(good)
    assert loaded.mutmut == {"a.x_f__mutmut_1": "dead store"}
    assert loaded.ml == {"a:f:dim:1": "why"}
    assert rep.load_equivalents(tmp_path / "missing.toml") == rep.Equivalents()
    for text, match in (('[mutmut]\n"a" = ""\n', "one-line reason"),
                        ('[mutmut]\n"a" = 3\n', "one-line reason"),
                        ('[other]\n"a" = "x"\n', "unknown tables"),
                        ("[mutmut\n", "not valid TOML")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(rep.EquivalentsError, match=match):
            rep.load_equivalents(bad)


def test_the_repositorys_equivalents_list_parses():
    from mlprop.audit import mutation

    root = Path(__file__).resolve().parents[1]
    path = mutation.equivalents_path(root, mutation.load_config(root))
    assert path == root / mutation.DEFAULT_EQUIVALENTS and path.is_file()
    loaded = rep.load_equivalents(path)
    mutated = ("mlprop.digits.", "mlprop.reference.")  # [tool.mutmut] only_mutate
    for name in loaded.mutmut:
        assert name.startswith(mutated) and "__mutmut_" in name, name
    for name in loaded.ml:
        assert name.startswith(mutated) and name.count(":") == 3, name


def sample_report() -> dict:
    overall = rep.tally(["killed"] * 8 + ["survived", "timeout"]).as_dict()
    return {
        "mutmut": {
            "overall": overall, "modules": {"mlprop.digits.train": overall},
            "survivors": [{"name": "mlprop.digits.train.x_train__mutmut_2", "path": "p",
                           "status": "survived",
                           "diff": "--- p\n+++ p\n@@ -1 +1 @@\n-    a = 1\n+    a = 2"}],
            "equivalent": [{"name": "mlprop.digits.train.x_f__mutmut_9", "reason": "dead"}],
            "stale_equivalents": ["mlprop.digits.train.x_gone__mutmut_1"],
        },
        "ml_mutants": {
            "overall": {"total": 2, "killed": 1, "timeout": 0, "survived": 1,
                        "equivalent": 0, "other": 0, "kill_rate": 50.0},
            "by_operator": {"mode-call": {"total": 2, "killed": 1, "timeout": 0,
                                          "survived": 1, "equivalent": 0, "other": 0,
                                          "kill_rate": 50.0}},
            "mutants": [
                {"id": "m:f:mode-call:1", "status": "killed", "description": "drop m.eval()",
                 "path": "p", "line": 3, "diff": ""},
                {"id": "m:f:mode-call:2", "status": "survived", "description": "drop m.train()",
                 "path": "p", "line": 9, "diff": "--- p\n+++ p\n-    m.train()\n+    pass"}],
            "stale_equivalents": [],
        },
        "timing": {"wall_seconds": 12.0, "mutmut_seconds": 10.0, "mutants_tested": 10,
                   "mutants_per_minute": 60.0, "ml_seconds": 2.0,
                   "training_path_retest": {"survivors": 1, "on_training_path": 1,
                                            "killed": 0, "seconds": 3.0, "reused": False}},
        "verdict": "mlprop audit: FAILED: 1 ML mutant(s) neither killed nor listed as "
                   "equivalent",
    }


def test_text_report_has_module_rows_survivor_diffs_and_operator_rows():
    text = rep.format_text(sample_report())
    assert "mlprop.digits.train" in text and "TOTAL" in text and "90.0%" in text
    assert "+    a = 2" in text
    assert "x_gone__mutmut_1" in text  # stale entries are shown
    assert "mode-call" in text and "50.0%" in text
    assert "m:f:mode-call:2: survived (drop m.train(), p:9)" in text
    assert "m:f:mode-call:1" not in text  # killed ML mutants are not listed one by one
    assert "10 mutants tested, 60/min" in text
    assert "training-path re-test 3 s (0 of 1 survivors killed)" in text
    assert text.rstrip().endswith("equivalent")


def test_markdown_report_has_tables_diffs_and_reasons():
    md = rep.format_markdown(sample_report())
    assert md.startswith("# mlprop mutation audit")
    assert "| mlprop.digits.train | 10 |" in md
    assert "```diff" in md and "+    a = 2" in md
    assert "`mlprop.digits.train.x_f__mutmut_9`: dead" in md
    assert "| mode-call | 2 | 1 |" in md
    assert "m:f:mode-call:2" in md and "m:f:mode-call:1`" not in md


def test_raw_score_counts_equivalents_against():
    counts = rep.tally(["killed"] * 8 + ["equivalent", "survived", "skipped"])
    assert counts.score == pytest.approx(100 * 8 / 9)
    assert counts.raw_score == pytest.approx(100 * 8 / 10)
    assert counts.as_dict()["raw_score"] == 80.0
