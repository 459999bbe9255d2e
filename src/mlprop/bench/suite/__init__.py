"""The benchmark suite of a target, shipped with mlprop: ``mlprop bench run`` (or
``pytest --pyargs mlprop.bench.suite --benchmark-only``) times the target's ``predict`` end to
end from uint8, its ``preprocess``, its trained model's forward pass and each augmentation,
in the user's project, against the target the pytest plugin resolves (``--mlprop-target``,
``$MLPROP_TARGET``, ``[tool.mlprop] target``). ``mlprop bench compare`` runs its
``compare``-marked part on two revisions. See :mod:`mlprop.bench.suite.test_target`."""

from pathlib import Path

SUITE_PACKAGE = "mlprop.bench.suite"
DEVICE_ENV = "MLPROP_BENCH_DEVICE"
"""``cpu`` (default) or ``cuda[:N]``: where the model and its inputs live."""


def suite_dir() -> Path:
    return Path(__file__).resolve().parent
