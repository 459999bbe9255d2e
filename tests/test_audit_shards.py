"""Sharded audits (issue 26): the partition, the shard result file and the merge checks.
The end-to-end equivalence with an unsharded audit is in test_end_to_end.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlprop.audit import merge, shards
from mlprop.audit.shards import Shard, ShardError

UNITS = st.lists(st.text("abcdef_:.0123456789", min_size=1, max_size=12), max_size=60,
                 unique=True)


@given(units=UNITS, count=st.integers(1, 9), data=st.data())
def test_the_parts_are_disjoint_cover_everything_and_are_the_same_on_every_call(
        units, count, data):
    seconds = data.draw(st.dictionaries(st.sampled_from(units), st.floats(0, 100))
                        if units else st.just({}))
    parts = shards.partition(units, count, seconds)
    assert len(parts) == count
    assert sorted(u for part in parts for u in part) == sorted(units)
    assert parts == shards.partition(list(reversed(units)), count, dict(seconds))


@given(count=st.integers(1, 8), size=st.integers(0, 300))
def test_without_timings_the_parts_have_about_equal_counts(count, size):
    parts = shards.partition([f"m{i}" for i in range(size)], count)
    ceiling = (1 + shards.TOLERANCE) * size / count
    assert all(len(part) <= max(ceiling, min(map(len, parts)) + 1) for part in parts)


def test_recorded_seconds_balance_the_parts():
    """One slow mutant and many quick ones: the slow one's part holds at most one other."""
    units = ["slow"] + [f"quick{i}" for i in range(20)]
    seconds = {"slow": 100.0, **{f"quick{i}": 5.0 for i in range(20)}}
    parts = shards.partition(units, 2, seconds)
    (slow_part,) = [part for part in parts if "slow" in part]
    assert len(slow_part) <= 2


def test_a_new_mutant_moves_no_other_one():
    """Each part keeps its units when the mutant list grows: its cached verdicts stay valid."""
    before = shards.partition([f"pkg.x_f__mutmut_{i}" for i in range(1, 200)], 3)
    after = shards.partition([f"pkg.x_f__mutmut_{i}" for i in range(1, 201)], 3)
    moved = sum(len(set(old) - set(new)) for old, new in zip(before, after, strict=True))
    assert moved <= 3


@pytest.mark.parametrize("text", ["0/0", "4/3", "0/3", "1/0", "x", "1", "1/2/3", "-1/2"])
def test_a_shard_out_of_range_is_refused(text):
    with pytest.raises(ShardError, match="--shard: expected K/N"):
        Shard.parse(text)


def test_a_shard_is_parsed():
    assert Shard.parse("2/3") == Shard(2, 3) and str(Shard(2, 3)) == "2/3"


def _result(index: int, count: int, verdicts: dict[str, int | None], **changes) -> dict:
    data = {
        "format": shards.FORMAT, "version": shards.VERSION,
        "shard": {"index": index, "count": count}, "fingerprint": "f" * 24,
        "partition": "p" * 24, "timings": "t" * 24,
        "options": {"ml_mutants": False, "suite": True},
        "units": sorted(shards.MUTMUT + name for name in verdicts),
        "mutmut": [{"name": name, "path": "src/pkg/mod.py", "exit_code": code,
                    "seconds": 1.0, "diff": None if code == 1 else f"diff of {name}"}
                   for name, code in verdicts.items()],
        "ml": None, "covering": {"pkg.mod.x_f": ["tests/test_mod.py::test_f"]},
        "equivalents": {"mutmut": {}, "ml": {}}, "timing": {"wall_seconds": 10.0 * index},
    }
    data.update(changes)
    return data


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_merged_results_give_one_score_and_a_partial_merge_never_passes(tmp_path):
    one = _write(tmp_path, "1.json", _result(1, 2, {"pkg.mod.x_f__mutmut_1": 1,
                                                    "pkg.mod.x_f__mutmut_2": 0}))
    two = _write(tmp_path, "2.json", _result(2, 2, {"pkg.mod.x_f__mutmut_10": 1,
                                                    "pkg.mod.x_f__mutmut_3": 1}))
    report, covering = merge.merge_report(merge.load([two, one]), fail_under=50.0)
    assert report["score"] == 75.0 and report["passed"]
    assert [s["name"] for s in report["mutmut"]["survivors"]] == ["pkg.mod.x_f__mutmut_2"]
    assert report["mutmut"]["survivors"][0]["diff"] == "diff of pkg.mod.x_f__mutmut_2"
    assert report["timing"]["wall_seconds"] == 20.0
    assert covering == {"pkg.mod.x_f": ["tests/test_mod.py::test_f"]}
    partial, _ = merge.merge_report(merge.load([one]), fail_under=0.0)
    assert not partial["passed"] and partial["missing_shards"] == ["2/2"]
    assert "partial merge" in partial["verdict"]


def test_merge_applies_the_equivalent_list_once_to_all_shards(tmp_path):
    reviewed = {"mutmut": {"pkg.mod.x_f__mutmut_2": "same output", "pkg.mod.x_gone__mutmut_1":
                           "renamed away"}, "ml": {}}
    one = _write(tmp_path, "1.json", _result(1, 2, {"pkg.mod.x_f__mutmut_1": 1},
                                             equivalents=reviewed))
    two = _write(tmp_path, "2.json", _result(2, 2, {"pkg.mod.x_f__mutmut_2": 0},
                                             equivalents=reviewed))
    report, _ = merge.merge_report(merge.load([one, two]), fail_under=100.0)
    assert report["score"] == 100.0 and report["passed"]
    assert report["mutmut"]["stale_equivalents"] == ["pkg.mod.x_gone__mutmut_1"]


@pytest.mark.parametrize(("change", "field"), [
    ({"format": "pytest-benchmark"}, "'format'"),
    ({"version": 99}, "'version'"),
    ({"shard": {"index": 3, "count": 2}}, "'shard'"),
    ({"shard": {"index": "1", "count": 2}}, "'shard.index'"),
    ({"fingerprint": None}, "'fingerprint'"),
    ({"units": ["mutmut:pkg.mod.x_f__mutmut_1", 7]}, "'units[1]'"),
    ({"mutmut": [{"name": "pkg.mod.x_f__mutmut_1", "path": "src/pkg/mod.py",
                  "exit_code": "1", "seconds": 1.0, "diff": None}]}, "'mutmut[0].exit_code'"),
    ({"units": []}, "'units'"),
    ({"options": {"ml_mutants": "no", "suite": True}}, "'options.ml_mutants'"),
    ({"version": True}, "'version'"),
    ({"timing": {"wall_seconds": "3"}}, "'timing.wall_seconds'"),
    ({"timing": {"wall_seconds": 3, "training_path_retest": []}},
     "'timing.training_path_retest'"),
    ({"covering": {"pkg.mod.x_f": [1]}}, "'covering.pkg.mod.x_f[0]'"),
    ({"equivalents": {"mutmut": {"pkg.mod.x_f__mutmut_1": 2}, "ml": {}}},
     "'equivalents.mutmut.pkg.mod.x_f__mutmut_1'"),
])
def test_a_malformed_shard_file_is_refused_naming_the_file_and_field(tmp_path, change, field):
    path = _write(tmp_path, "bad.json", _result(1, 2, {"pkg.mod.x_f__mutmut_1": 1}, **change))
    with pytest.raises(ShardError) as error:
        merge.load([path])
    assert str(error.value).startswith(f"{path}: field {field}")


def test_a_truncated_or_foreign_file_is_refused(tmp_path):
    good = json.dumps(_result(1, 1, {"pkg.mod.x_f__mutmut_1": 1}))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(good[: len(good) // 2])
    with pytest.raises(ShardError, match=r"truncated\.json: not valid JSON"):
        merge.load([truncated])
    foreign = _write(tmp_path, "list.json", [1, 2])
    with pytest.raises(ShardError, match=r"list\.json: field 'format'"):
        merge.load([foreign])
    with pytest.raises(ShardError, match=r"missing\.json: unreadable"):
        merge.load([tmp_path / "missing.json"])


@pytest.mark.parametrize(("change", "message"), [
    ({"fingerprint": "g" * 24}, "field 'fingerprint' differs"),
    ({"partition": "q" * 24}, "field 'partition' differs"),
    ({"timings": "u" * 24}, "field 'timings' differs"),
    ({"shard": {"index": 2, "count": 3}}, "field 'shard.count'"),
])
def test_results_of_different_runs_are_not_merged(tmp_path, change, message):
    one = _write(tmp_path, "1.json", _result(1, 2, {"pkg.mod.x_f__mutmut_1": 1}))
    two = _write(tmp_path, "2.json", _result(2, 2, {"pkg.mod.x_f__mutmut_2": 1}, **change))
    with pytest.raises(ShardError, match=message):
        merge.load([one, two])


def test_overlapping_results_are_not_merged(tmp_path):
    one = _write(tmp_path, "1.json", _result(1, 2, {"pkg.mod.x_f__mutmut_1": 1}))
    again = _write(tmp_path, "again.json", _result(1, 2, {"pkg.mod.x_f__mutmut_1": 1}))
    with pytest.raises(ShardError, match="given twice"):
        merge.load([one, again])
    shared = _write(tmp_path, "2.json", _result(2, 2, {"pkg.mod.x_f__mutmut_1": 1}))
    with pytest.raises(ShardError, match="is in both"):
        merge.load([one, shared])


def test_timings_come_from_an_earlier_audit_json(tmp_path):
    path = _write(tmp_path, "audit.json", {"score": 80.0, "unit_seconds": {"mutmut:a": 2.5}})
    assert shards.timings_from(path) == {"mutmut:a": 2.5}
    other = _write(tmp_path, "other.json", {"score": 80.0})
    with pytest.raises(ShardError, match=r"other\.json: field 'unit_seconds'"):
        shards.timings_from(other)


def test_the_gate_given_before_merge_is_kept_and_shard_options_are_refused(tmp_path, capsys):
    """`mlprop audit --fail-under 90 merge F` gates like `mlprop audit merge --fail-under 90
    F` (argparse would reset it to None), and what only a shard uses is refused at merge."""
    from mlprop import cli

    one = _write(tmp_path, "1.json", _result(1, 1, {"pkg.mod.x_f__mutmut_1": 1,
                                                    "pkg.mod.x_f__mutmut_2": 0}))
    assert cli.main(["audit", "merge", str(one)]) == 0
    assert cli.main(["audit", "--fail-under", "90", "merge", str(one)]) == 1
    assert cli.main(["audit", "merge", "--fail-under", "90", str(one)]) == 1
    capsys.readouterr()
    assert cli.main(["audit", "--ml-mutants", "merge", str(one)]) == 2
    assert "--ml-mutants is for the shards" in capsys.readouterr().err



_FAKE_MUTMUT = {
    "__init__.py": "",
    "state.py": "def state():\n    return None\n",
    "workers/__init__.py": "",
    "workers/isolation.py": ("class ForkServerRunner:\n"
                             "    def submit(self, *a, **k): pass\n"
                             "    def wait_for_result(self, *a, **k): pass\n"),
    "configuration.py": ("class _Config:\n    pytest_add_cli_args_test_selection = []\n"
                         "_CONFIG = _Config()\ndef config():\n    return _CONFIG\n"),
    "__main__.py": ("import json, os, subprocess, sys\n"
                    "from mutmut.configuration import config\n"
                    "CHILD = ('import os, json; print(json.dumps(sorted('\n"
                    "         'k for k in os.environ if k.startswith(\"MLPROP_\"))))')\n"
                    "def cli():\n"
                    "    child = subprocess.run([sys.executable, '-c', CHILD],\n"
                    "                           capture_output=True, text=True, check=True)\n"
                    "    print(json.dumps({'argv': sys.argv[1:],\n"
                    "                      'child_env': json.loads(child.stdout),\n"
                    "                      'selection':\n"
                    "                      config().pytest_add_cli_args_test_selection}))\n"
                    "    return 0\n"),
}


def test_what_a_shard_hands_mutmut_never_reaches_the_tests_subprocesses(tmp_path):
    """The shard's mutant list and the extra tests reach mutmut (its argv and its test
    selection) but not the environment of the processes the tests start: mlprop's own test
    of the re-test runs `mlprop audit` on a project of its own, which read the outer shard's
    mutant names and failed mutmut's stats run of every sharded audit of mlprop."""
    import subprocess
    import sys

    from mlprop.audit import mutation

    fake = tmp_path / "fake"
    for name, text in _FAKE_MUTMUT.items():
        path = fake / "mutmut" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    names = tmp_path / "names.txt"
    names.write_text("pkg.x_f__mutmut_1\npkg.x_f__mutmut_2\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(fake),
           mutation.NAMES_FILE_ENV: str(names),
           mutation.EXTRA_TESTS_ENV: json.dumps(["suite/dir"])}
    done = subprocess.run([sys.executable, "-c", mutation._LAUNCHER, "run"], env=env,
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["argv"] == ["run", "pkg.x_f__mutmut_1", "pkg.x_f__mutmut_2"]
    assert seen["selection"] == ["suite/dir"]
    assert seen["child_env"] == []
