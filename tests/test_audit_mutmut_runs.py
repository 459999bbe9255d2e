"""The audit's mutmut runs, for real, on a two-function project (seconds): a mutant's tests
run cheapest first under mutmut's fork server too (issue 26: its fork runner sorts them, its
fork server sends them in set order, so a mutant a quick test kills could wait for every slow
one), and a shard runs mutmut on its own mutants only."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mlprop.audit import mutation
from mlprop.audit import report as rep

pytest.importorskip("mutmut")

SLOW_TESTS = 4


def _project(root: Path) -> Path:
    (root / "src" / "calc").mkdir(parents=True)
    (root / "src" / "calc" / "__init__.py").write_text("")
    (root / "src" / "calc" / "core.py").write_text(
        "def add_one(x):\n    return x + 1\n\n\ndef double(x):\n    return x * 2\n")
    (root / "tests").mkdir()
    (root / "tests" / "__init__.py").write_text("")
    log = root / "order.log"
    slow = "".join(f"""

    def test_slow_{i}():
        _log("slow_{i}")
        time.sleep(0.3)
        assert core.add_one(1) == 2 and core.double(2) == 4
    """ for i in range(SLOW_TESTS))
    (root / "tests" / "test_core.py").write_text(textwrap.dedent(f"""\
        import os
        import time

        from calc import core


        def _log(name):
            mutant = os.environ.get("MUTANT_UNDER_TEST", "")
            if "__mutmut_" in mutant:
                with open({str(log)!r}, "a") as out:
                    out.write(f"{{mutant}} {{name}}\\n")


        """) + textwrap.dedent(slow) + textwrap.dedent("""

        def test_fast():  # last in the file: cheapest-first must move it to the front
            _log("fast")
            assert core.add_one(2) == 3 and core.double(3) == 6
        """))
    (root / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.mutmut]
        source_paths = ["src/calc"]
        pytest_add_cli_args = ["-p", "no:cacheprovider"]
        pytest_add_cli_args_test_selection = ["tests"]
        process_isolation = "forkserver"  # as `mlprop init` writes it
        forkserver_warmup = "collect"

        [tool.pytest.ini_options]
        pythonpath = ["src"]
    """))
    return root


def _runs(root: Path) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for line in (root / "order.log").read_text().splitlines():
        mutant, test = line.split()
        runs.setdefault(mutant, []).append(test)
    return runs


def test_each_mutant_meets_its_quickest_test_first(tmp_path):
    root = _project(tmp_path)
    config = mutation.load_config(root)
    run = mutation.run_mutmut(root, config, max_children=2, progress=lambda _: None,
                              env=mutation.audit_environment(root))
    killed = [o.name for o in run.outcomes if o.status == "killed"]
    assert len(killed) >= 4, run.output_tail
    runs = _runs(root)
    assert set(runs) == set(killed)
    # every mutant here fails test_fast: with -x the slow tests never run on a mutant
    assert all(tests == ["fast"] for tests in runs.values()), runs
    # and each mutant's seconds are kept (mutmut's fork server reports 0.0 for all)
    assert all(o.seconds and 0.0 < o.seconds < 60 for o in run.outcomes), run.outcomes


def test_a_shard_runs_mutmut_on_its_own_mutants_only(tmp_path):
    root = _project(tmp_path)
    config = mutation.load_config(root)
    env = mutation.audit_environment(root)
    every = mutation.generate_mutants(root, config, max_children=1, env=env)
    names = [o.name for o in every]
    assert names and all(o.status == "not checked" for o in every)
    mine = [name for name in names if ".x_double__" in name]
    run = mutation.run_mutmut(root, config, max_children=2, progress=lambda _: None,
                              env=env, names=mine)
    judged = {o.name for o in run.outcomes if o.status != "not checked"}
    assert judged == set(mine)
    assert set(_runs(root)) == set(mine)
    messages: list[str] = []
    again = mutation.run_mutmut(root, config, max_children=2, progress=messages.append,
                                env=env, names=mine)
    assert again.skipped and "have a verdict" in messages[-1]
    state = json.loads((root / "mutants" / mutation.STATE_FILE).read_text())
    assert set(state) == {"fingerprint", "inputs"}
    assert rep.read_mutmut_results(root, config.mutated_files(root))
