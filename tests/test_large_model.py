"""A correct ResNet-18 with batch norm at 3x224x224 (tests/large_model.py) passes the model
and serving properties under a hard 4 GiB memory cap: no false alarm from degenerate
batches (batch norm over identical images), no memory that grows with examples or shrink
steps, batch sizes scaled to the model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CAP = 4 << 30

RUNNER = """
import resource, sys
import pytest
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
sys.exit(pytest.main(sys.argv[1:]))
"""

pytestmark = pytest.mark.slow


def test_resnet18_passes_model_and_serving_properties_under_a_memory_cap(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPROP_", "PYTEST_"))}
    env.update(CI="true", OMP_NUM_THREADS="2")
    done = subprocess.run(
        [sys.executable, "-c", RUNNER.format(cap=CAP), "-q", "-p", "no:cacheprovider",
         "--pyargs", "mlprop.properties", "--mlprop-target", "tests.large_model:target",
         "--mlprop-components", "model,predict", "--mlprop-examples-scale", "0.1",
         "-o", f"pythonpath={REPO / 'src'} {REPO}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "failed" not in done.stdout
    assert " passed" in done.stdout


def test_out_of_memory_is_a_property_failure_naming_the_setting():
    from mlprop.budget import memory_guard
    from mlprop.checks import PropertyViolation
    from tests.large_model import target

    with pytest.raises(PropertyViolation) as caught, memory_guard(target, "the model", 2):
        raise MemoryError
    message = str(caught.value)
    assert "the model ran out of memory at batch 2 with inputs of shape 3x224x224" in message
    assert "thresholds={'model_batch': 1}" in message and "--mlprop-examples-scale" in message


def test_model_batch_scales_with_the_model():
    import mlprop.digits
    from mlprop.budget import model_batch
    from tests.large_model import target

    assert model_batch(mlprop.digits.target) == 6
    assert model_batch(target) == 2
    assert model_batch(target.replace(thresholds={"model_batch": 1})) == 1
