"""``mlprop init``: add ``[tool.mlprop]`` and ``[tool.mutmut]`` to the project's
pyproject.toml and write a CI workflow; never replaces an existing part without --force."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlprop.cli.common import EXIT_OK
from mlprop.docs_links import page_url


def register(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser(
        "init", help="set this project up for mlprop: [tool.mlprop], [tool.mutmut], a CI "
        "workflow",
        description="Run in your project's root (beside pyproject.toml). Edits pyproject.toml "
        "keeping your comments and layout, writes .github/workflows/mlprop.yml, and prints "
        "what it wrote; existing sections and files are kept unless --force.")
    init.add_argument("--target", metavar="MODULE:ATTR", help="your Target (default: "
                      "PACKAGE.mlprop_target:target)")
    init.add_argument("--package", metavar="NAME", help="the package to test and mutate "
                      "(default: the one [project] name names, or the only one found)")
    init.add_argument("--force", action="store_true",
                      help="replace existing [tool.mlprop], [tool.mutmut] and workflow")
    init.add_argument("--dir", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    init.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlprop.project_init import plan_init, write_plan

    plan = plan_init(args.dir, target=args.target, package=args.package, force=args.force)
    write_plan(plan)
    for change in plan.changes:
        print(f"wrote {change}")
    for kept in plan.kept:
        print(f"kept {kept}")
    if not plan.changes:
        print("nothing to write")
    target_module = plan.target.split(":")[0]
    print(f"package: {plan.package_path}; target: {plan.target}")
    print(f"next: define `{plan.target.split(':')[1]}` in {target_module} (docs: "
          f"{page_url('tutorial', '3-describe-it-as-a-target')}), then run `pytest` or "
          "`mlprop check`")
    print("to have your training code checked too, give the Target your own train(images, "
          "labels, *, seed, epochs), training_data() and save_model(model, path) / "
          f"load_model(path) (docs: {page_url('how-to/training')})")
    return EXIT_OK
