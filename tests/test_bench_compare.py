"""``mlprop bench compare``: git worktrees, interleaved runs, verdicts and exit codes.

Most tests use a throwaway git repository and a stand-in runner that "measures" a number
written in each revision's ``src/speed.txt``, so the plumbing is checked in milliseconds;
one test runs real pytest-benchmark subprocesses on a tiny repository (about 10 s) to prove
that each run imports the ``src/`` it is meant to measure.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlprop import bench, cli

REPO = Path(__file__).resolve().parents[1]
GIT_ID = ["-c", "user.name=mlprop-test", "-c", "user.email=test@example.invalid"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, "-C", str(repo), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    return path


@pytest.fixture
def two_speeds(repo) -> tuple[Path, str, str]:
    """BASE takes 1.0 s per call of benchmark `slow`, HEAD 1.2 s; `steady` never changes."""
    base = commit(repo, {"src/speed.txt": "1.0", "benchmarks/placeholder.txt": ""}, "base")
    head = commit(repo, {"src/speed.txt": "1.2"}, "head")
    return repo, base, head


class SpeedRunner:
    """Stands in for a lockstep job: reads each revision's speed, adds jitter."""

    def __init__(self, jitter=(1.0, 1.02, 0.99, 1.01, 0.98, 1.03, 1.0)) -> None:
        self.jitter, self.calls, self.cpus = list(jitter), [], []

    def __call__(self, runs, scratch: Path, first: str, cpu=None) -> dict[str, dict[str, float]]:
        self.calls.append((scratch.name, first))
        self.cpus.append(cpu)
        results = {}
        for side, run in runs.items():
            assert (run.bench_tree / "benchmarks").is_dir() and run.bench_tree.name == "head"
            assert run.src_tree.name == side
            factor = self.jitter[(len(self.calls) * 2 + len(results)) % len(self.jitter)]
            speed = float((run.src_tree / "src" / "speed.txt").read_text())
            results[side] = {"slow": speed * factor, "steady": 0.5 * factor}
        return results


def test_worktrees_check_out_each_revision_and_are_removed(two_speeds):
    repo, base, head = two_speeds
    with bench.worktrees(repo, {"base": base, "head": head}) as trees:
        assert (trees["base"] / "src/speed.txt").read_text() == "1.0"
        assert (trees["head"] / "src/speed.txt").read_text() == "1.2"
        assert len(git(repo, "worktree", "list").splitlines()) == 3
    assert not trees["base"].exists() and not trees["head"].exists()
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_unknown_revision_is_named(two_speeds):
    repo, base, _ = two_speeds
    with pytest.raises(bench.CompareError, match="unknown revision 'nope'"):
        bench.compare_revisions(repo, base, "nope", runner=SpeedRunner())


def test_a_warm_job_then_jobs_that_alternate_who_goes_first(two_speeds):
    repo, base, head = two_speeds
    runner = SpeedRunner()
    report = bench.compare_revisions(repo, base, head, rounds=3, runner=runner)
    assert runner.calls == [("warm", "base"), ("round-0", "base"), ("round-1", "head"),
                            ("round-2", "base")]
    assert report.order == ["base", "head", "base"]
    cpus = bench.timing_cpus(True)
    assert runner.cpus == [cpus[0]] + [cpus[i % len(cpus)] for i in range(3)]
    assert bench.timing_cpus(False) == [None]


def test_planted_slowdown_is_flagged_and_the_rest_is_not(two_speeds):
    repo, base, head = two_speeds
    report = bench.compare_revisions(repo, base, head, rounds=5, runner=SpeedRunner())
    verdicts = {c.name: c.verdict for c in report.comparisons}
    assert verdicts == {"slow": "regression", "steady": "same"}
    slow = next(c for c in report.comparisons if c.name == "slow")
    assert slow.ratio == pytest.approx(1.2, rel=0.05)


def test_base_equal_to_head_is_never_flagged(two_speeds):
    repo, _, head = two_speeds
    report = bench.compare_revisions(repo, head, head, rounds=5, runner=SpeedRunner())
    assert report.regressions == []


def test_head_without_benchmarks_is_refused(repo):
    only = commit(repo, {"src/speed.txt": "1.0"}, "no benchmarks")
    with pytest.raises(bench.CompareError, match="no benchmarks/"):
        bench.compare_revisions(repo, only, only, runner=SpeedRunner())


def test_not_a_repository_is_refused(tmp_path):
    with pytest.raises(bench.CompareError, match="not inside a git repository"):
        bench.compare_revisions(tmp_path, "HEAD", "HEAD", runner=SpeedRunner())


@pytest.mark.parametrize(("options", "message"), [(dict(rounds=0), "rounds"),
                                                  (dict(threshold=0.0), "threshold"),
                                                  (dict(statistic="p99"), "statistic")])
def test_bad_settings_are_refused(two_speeds, options, message):
    repo, base, head = two_speeds
    with pytest.raises(bench.CompareError, match=message):
        bench.compare_revisions(repo, base, head, runner=SpeedRunner(), **options)


# --- the command


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def speed_runner(monkeypatch) -> SpeedRunner:
    runner = SpeedRunner()
    monkeypatch.setattr(bench.compare, "run_lockstep", runner)
    return runner


def test_cli_exits_1_on_a_regression(two_speeds, speed_runner, tmp_path):
    repo, base, head = two_speeds
    report = tmp_path / "compare.json"
    code, out, err = run_cli(["bench", "compare", base, head, "--repo", str(repo),
                              "--benchmarks", "benchmarks",
                              "--rounds", "3", "--json", str(report)])
    assert code == 1
    assert "REGRESSION" in out and "slow" in err
    data = json.loads(report.read_text())
    assert data["rounds"] == 3 and data["threshold"] == pytest.approx(0.10)
    assert {c["name"]: c["verdict"] for c in data["comparisons"]}["slow"] == "regression"


def test_cli_exits_0_without_a_regression(two_speeds, speed_runner):
    repo, base, head = two_speeds
    code, out, _ = run_cli(["bench", "compare", base, head, "--repo", str(repo),
                            "--benchmarks", "benchmarks",
                            "--rounds", "3", "--fail-over", "25"])
    assert code == 0 and "REGRESSION" not in out


def test_cli_usage_error_is_one_line_and_exit_2(two_speeds, speed_runner):
    repo, base, _ = two_speeds
    code, _, err = run_cli(["bench", "compare", base, "nope", "--repo", str(repo),
                            "--benchmarks", "benchmarks"])
    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown revision 'nope'" in err


@pytest.mark.parametrize("option", [["--rounds", "0"], ["--fail-over", "x"],
                                    ["--fail-over", "-5"], ["--threads", "-1"],
                                    ["--statistic", "p99"], ["--timing-rounds", "0"]])
def test_cli_bad_option_values_exit_2(option):
    with pytest.raises(SystemExit) as stop, contextlib.redirect_stderr(io.StringIO()):
        cli.main(["bench", "compare", "A", "B", *option])
    assert stop.value.code == 2


# --- the jobs


def test_run_command_measures_the_given_src_tree(tmp_path):
    run = bench.BenchmarkRun(bench_tree=tmp_path / "head", src_tree=tmp_path / "base")
    command = run.command(tmp_path / "out.json")
    env = run.environment((tmp_path / "mine", tmp_path / "other"))
    assert f"pythonpath={tmp_path / 'base' / 'src'} {tmp_path / 'head'}" in command
    assert "--benchmark-only" in command and command[command.index("-m", 3) + 1] == "compare"
    assert "--benchmark-save-data" in command  # the raw rounds, for the trimmed mean
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path / "base" / "src")
    assert env["MLPROP_BENCH_EXPECT_SRC"] == str(tmp_path / "base" / "src")
    assert env["OMP_NUM_THREADS"] == "1"
    assert env["MLPROP_BENCH_TURN_MINE"] == str(tmp_path / "mine")
    assert env["MLPROP_BENCH_TURN_ROUNDS"] == "60"
    assert env["MLPROP_BENCH_TURN_CPU"] == ""
    assert run.environment((tmp_path / "a", tmp_path / "b"), 1)["MLPROP_BENCH_TURN_CPU"] == "1"
    unthreaded = bench.BenchmarkRun(tmp_path, tmp_path, threads=None).environment()
    assert unthreaded.get("OMP_NUM_THREADS") == os.environ.get("OMP_NUM_THREADS")
    assert "MLPROP_BENCH_TURN_MINE" not in unthreaded


def _write_result(path: Path, sources: dict[str, str]) -> None:
    path.write_text(json.dumps({"benchmarks": [{"fullname": "t",
                                                "stats": {"median": 1.0, "data": [1.0]}}],
                                "mlprop": {"sources": sources}}))


def test_a_run_that_imported_another_copy_is_refused(tmp_path):
    _write_result(tmp_path / "out.json", {"mlprop": "/somewhere/else/mlprop/__init__.py"})
    run = bench.BenchmarkRun(bench_tree=tmp_path, src_tree=tmp_path)
    with pytest.raises(bench.CompareError, match="another copy shadows it"):
        run.results(tmp_path / "out.json")


def test_a_run_that_matched_nothing_is_refused(tmp_path):
    (tmp_path / "out.json").write_text(json.dumps({"benchmarks": []}))
    run = bench.BenchmarkRun(bench_tree=tmp_path, src_tree=tmp_path, keyword="nothing")
    with pytest.raises(bench.CompareError, match="no benchmark matched"):
        run.results(tmp_path / "out.json")


# A stand-in for a pytest run: takes `rounds` turns, logging its side at each, then
# writes a result, as benchmarks/conftest.py and timed_inference do.
TURN_TAKER = """
import json, os, sys
sys.path.insert(0, {src!r})
from mlprop import bench
side, rounds, log, out, crash = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
if crash == "yes":
    sys.exit(3)
turns = bench.current_turns()
for _ in range(rounds):
    turns.wait()
    with open(log, "a") as handle:
        handle.write(side[0])
with open(log + "." + side, "w") as handle:
    handle.write(repr(sorted(os.sched_getaffinity(0))))
turns.finish()
json.dump({{"benchmarks": [{{"fullname": "t", "stats": {{"data": [1.0]}}}}]}}, open(out, "w"))
"""


class TurnTaker(bench.BenchmarkRun):
    def __init__(self, tree: Path, side: str, rounds: int, log: Path, crash: bool = False):
        super().__init__(bench_tree=tree, src_tree=tree)
        object.__setattr__(self, "extra", (side, rounds, log, crash))

    def command(self, json_path: Path) -> list[str]:
        side, rounds, log, crash = self.extra
        script = TURN_TAKER.format(src=str(REPO / "src"))
        return [sys.executable, "-c", script, side, str(rounds), str(log), str(json_path),
                "yes" if crash else "no"]


@pytest.mark.parametrize(("first", "base_rounds", "head_rounds", "expected"), [
    ("base", 4, 4, "bhbhbhbh"),
    ("head", 3, 3, "hbhbhb"),
    ("base", 2, 5, "bhbhhhh"),  # BASE is done: HEAD goes on alone
    ("head", 4, 1, "hbbbb"),
])
def test_lockstep_sides_take_strict_turns(tmp_path, first, base_rounds, head_rounds,
                                          expected):
    log = tmp_path / "turns.log"
    runs = {"base": TurnTaker(tmp_path, "base", base_rounds, log),
            "head": TurnTaker(tmp_path, "head", head_rounds, log)}
    cpu = max(os.sched_getaffinity(0))
    result = bench.run_lockstep(runs, tmp_path / "job", first, cpu=cpu, timeout=60)
    assert log.read_text() == expected
    for side in ("base", "head"):  # timed on the one CPU chosen for the job
        assert (tmp_path / f"turns.log.{side}").read_text() == repr([cpu])
    assert result == {"base": {"t": 1.0}, "head": {"t": 1.0}}


def test_lockstep_survives_a_side_that_dies_before_its_first_turn(tmp_path):
    log = tmp_path / "turns.log"
    runs = {"base": TurnTaker(tmp_path, "base", 3, log, crash=True),
            "head": TurnTaker(tmp_path, "head", 3, log)}
    with pytest.raises(bench.CompareError, match=r"against base .* exited 3"):
        bench.run_lockstep(runs, tmp_path / "job", "base", timeout=60)
    assert log.read_text() == "hhh"  # HEAD was released and finished alone


@pytest.mark.slow
def test_real_runs_import_each_revisions_own_src(repo):
    """One real lockstep job (two pytest-benchmark processes) on two worktrees of a copy of
    mlprop whose `work.VERSION` differs per revision: each side imports its own src/ (the
    conftest check passes, and the recorded sources and the version say so)."""
    shutil.copytree(REPO / "src" / "mlprop", repo / "src" / "mlprop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "benchmarks").mkdir()
    shutil.copy(REPO / "benchmarks" / "conftest.py", repo / "benchmarks" / "conftest.py")
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    bench_file = ("import pytest\n\n"
                  "@pytest.mark.compare\n"
                  "def test_work(benchmark):\n"
                  "    from mlprop import work\n"
                  "    from mlprop.bench import timed_inference\n"
                  "    benchmark.extra_info['version'] = work.VERSION\n"
                  "    timed_inference(benchmark, lambda: sum(range(100)), device='cpu',\n"
                  "                    batch=1)\n")
    base = commit(repo, {"benchmarks/test_tiny.py": bench_file,
                         "src/mlprop/work.py": "VERSION = 'base'\n"}, "base")
    head = commit(repo, {"src/mlprop/work.py": "VERSION = 'head'\n"}, "head")
    with bench.worktrees(repo, {"base": base, "head": head}) as trees:
        runs = {side: bench.BenchmarkRun(trees["head"], trees[side], rounds=5)
                for side in bench.SIDES}
        scratch = trees["head"].parent / "job"
        results = bench.run_lockstep(runs, scratch, "head", timeout=300)
        seen = {}
        for side in bench.SIDES:
            data = json.loads((scratch / f"{side}.json").read_text())
            seen[side] = (data["benchmarks"][0]["extra_info"]["version"],
                          data["mlprop"]["sources"]["mlprop"])
    assert [name.split("::")[-1] for name in results["base"]] == ["test_work"]
    assert seen["base"][0] == "base" and seen["head"][0] == "head"
    assert "/base/src/mlprop/" in seen["base"][1] and "/head/src/mlprop/" in seen["head"][1]
