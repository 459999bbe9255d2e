"""Results logged to MLflow: one MLflow run per ``mlprop check``/``audit``/``bench
compare``/``drift``/``fairness`` invoked with ``--mlflow``.

MLflow is optional (``pip install 'mlprop[mlflow]'``): :func:`require_mlflow` says so in one
line (the command exits 2 before any work starts). The tracking URI is MLflow's own:
``$MLFLOW_TRACKING_URI`` when set, else MLflow's default local store (``sqlite:///mlflow.db``
in the current directory with MLflow 3); no server is needed.

Every run lands in the experiment named after the target spec (``mlprop.digits:target``;
one experiment holds a target's checks, audits, benchmarks and monitoring), is tagged
``mlprop.command``, and logs the params from :func:`base_params` (target, mlprop, torch and
Hypothesis versions, git commit) plus the command's own params and metrics; a report
directory is logged as the run's artifacts.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlprop.errors import MlpropError
from mlprop.report.environment import git_commit, versions

__all__ = ["INSTALL_HINT", "TrackingError", "base_params", "log_run", "metric_key",
           "mlflow_requested", "require_mlflow"]

INSTALL_HINT = "pip install 'mlprop[mlflow]'"


class TrackingError(MlpropError, RuntimeError):
    """MLflow is missing, or the run could not be logged."""


def mlflow_requested(option: bool | None, directory: Path | None = None) -> bool:
    """``--mlflow`` when given, else ``[tool.mlprop] mlflow`` of the project in
    ``directory`` (default: the current directory)."""
    if option is not None:
        return bool(option)
    from mlprop.config import read_config

    return bool(read_config(directory or Path.cwd()).get("mlflow", False))


def require_mlflow() -> None:
    """Raise :class:`TrackingError` naming the install command when MLflow is missing."""
    if importlib.util.find_spec("mlflow") is None:
        raise TrackingError(f"--mlflow needs MLflow, which is not installed: {INSTALL_HINT}")


def metric_key(*parts: object) -> str:
    """A key MLflow accepts (letters, digits, ``_ - . / space``) from ``parts``:
    ``metric_key("images_per_s", "test_bench_predict[64]")`` ->
    ``images_per_s.test_bench_predict_64``."""
    clean = (re.sub(r"[^A-Za-z0-9_\-./ ]+", "_", str(part)).strip("_") for part in parts
             if part not in (None, ""))
    return ".".join(part for part in clean if part)[:250]


def base_params(target_spec: str | None, directory: Path | None = None) -> dict[str, str]:
    """What every run records: the target spec, library versions and the git commit."""
    found = versions()
    return {"target": target_spec or "unknown",
            "mlprop_version": found.get("mlprop", "unknown"),
            "torch_version": found.get("torch", "unknown"),
            "hypothesis_version": found.get("hypothesis", "unknown"),
            "python_version": found.get("python", "unknown"),
            "git_commit": git_commit(directory) or "unknown"}


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    clean = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float) and math.isfinite(float(value)):
            clean[metric_key(key)] = float(value)
    return clean


def log_run(*, command: str, target_spec: str | None, params: Mapping[str, Any] | None = None,
            metrics: Mapping[str, Any] | None = None, artifacts: Path | None = None,
            tags: Mapping[str, str] | None = None, directory: Path | None = None) -> str:
    """Log one MLflow run and return its id.

    ``params`` are added to :func:`base_params` (values become strings, MLflow's limit of
    6000 characters applies); ``metrics`` that are not finite numbers are left out;
    ``artifacts`` is a directory whose files become the run's artifacts."""
    require_mlflow()
    try:
        import mlflow
    except Exception as exc:  # a broken installation
        raise TrackingError(f"--mlflow: MLflow cannot be imported ({exc}): {INSTALL_HINT}"
                            ) from None
    all_params = {**base_params(target_spec, directory),
                  **{k: v for k, v in (params or {}).items() if v is not None}}
    try:
        mlflow.set_experiment(target_spec or "mlprop")
        with mlflow.start_run(run_name=f"mlprop {command}") as run:
            mlflow.set_tags({"mlprop.command": command, **(tags or {})})
            mlflow.log_params({metric_key(k): str(v)[:6000] for k, v in all_params.items()})
            clean = _clean_metrics(metrics or {})
            if clean:
                mlflow.log_metrics(clean)
            if artifacts is not None and Path(artifacts).is_dir():
                mlflow.log_artifacts(str(artifacts))
            return run.info.run_id
    except MlpropError:
        raise
    except Exception as exc:
        raise TrackingError(f"--mlflow: logging to {mlflow.get_tracking_uri()} failed: "
                            f"{type(exc).__name__}: {exc}") from None
