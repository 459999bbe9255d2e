"""A small user project, as a new user of an installed mlprop would write it: its own package
(``digitpipe``: torchvision-style preprocessing with torch alone, a small CNN, a serving path
and one augmentation), its own target and its own unit test that uses
``mlprop.strategies``. The end-to-end tests write it into a temporary directory.

``plant_fault`` swaps in the bug the suite must find: normalisation with the statistics of
the batch instead of fixed constants (every prediction then depends on its batch mates).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "digitpipe"

PYPROJECT = """\
# digitpipe: a user's project (not mlprop's)
[project]
name = "digitpipe"
version = "0.1.0"

[tool.pytest.ini_options]
pythonpath = ["src"]  # the user's package, not installed
"""

PIPELINE = '''\
"""digitpipe: grey images in, class probabilities out."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlprop import ImageSchema

SCHEMA = ImageSchema(num_classes=3, min_side=6, max_side=20)
SIZE = 12
MEAN, STD = 0.2, 0.3  # fixed normalisation constants (measured on the training data)
INPUT_RANGE = ((0.0 - MEAN) / STD, (1.0 - MEAN) / STD)


def to_tensor(images):
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1], like transforms.ToTensor."""
    return torch.from_numpy(np.array(images, dtype=np.float32, copy=True))[:, None] / 255.0


def normalize(batch):
    return (batch - MEAN) / STD


def preprocess(images):
    """Validate, resize to SIZE x SIZE (bilinear, antialiased), normalise."""
    SCHEMA.validate(images)
    batch = to_tensor(images)
    if len(batch):
        batch = F.interpolate(batch, size=(SIZE, SIZE), mode="bilinear", antialias=True,
                              align_corners=False).clamp(0.0, 1.0)
    else:
        batch = batch.new_zeros((0, 1, SIZE, SIZE))
    return normalize(batch).numpy()


def add_noise(images, *, seed, magnitude):
    """Gaussian pixel noise, standard deviation 40 * magnitude grey levels, clipped."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 40.0 * magnitude, size=np.shape(images))
    return np.clip(np.asarray(images, dtype=np.float64) + noise, 0, 255).round().astype(np.uint8)


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.hidden = nn.Linear(144, 32)
        self.relu2 = nn.ReLU()
        self.head = nn.Linear(32, SCHEMA.num_classes)

    def forward(self, x):
        features = self.pool(self.relu(self.conv(x))).flatten(1)
        return self.head(self.relu2(self.hidden(features)))


def build_model(seed):
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return SmallNet()
    finally:
        torch.random.set_rng_state(generator_state)


_SERVED = build_model(7).eval()


def predict(images):
    with torch.no_grad():
        logits = _SERVED(torch.from_numpy(preprocess(images)))
    return torch.softmax(logits, dim=1).numpy()
'''

TARGET = '''\
from mlprop import Augmentation, Target

from digitpipe import pipeline

target = Target(
    name="digitpipe",
    schema=pipeline.SCHEMA,
    input_shape=(1, pipeline.SIZE, pipeline.SIZE),
    input_range=pipeline.INPUT_RANGE,
    preprocess=pipeline.preprocess,
    augmentations={"noise": Augmentation(fn=pipeline.add_noise, label_preserving=True)},
    build_model=pipeline.build_model,
    predict=pipeline.predict,
    # no trained model or holdout set yet: those properties are skipped and listed
)
'''

USER_TEST = '''\
from hypothesis import given

from mlprop.strategies import images

from digitpipe import pipeline


@given(images(pipeline.SCHEMA, max_batch=4))
def test_preprocess_gives_one_normalised_image_per_input(batch):
    out = pipeline.preprocess(batch)
    assert out.shape == (len(batch), 1, pipeline.SIZE, pipeline.SIZE)
'''

PER_BATCH_NORMALISATION = '''\
def normalize(batch):
    return (batch - batch.mean()) / (batch.std() + 1e-6) if batch.numel() > 1 else batch
'''


def write_project(root: Path) -> Path:
    """Write the project into ``root`` (created); returns ``root``."""
    files = {
        "pyproject.toml": PYPROJECT,
        f"src/{PACKAGE}/__init__.py": "",
        f"src/{PACKAGE}/pipeline.py": PIPELINE,
        f"src/{PACKAGE}/mlprop_target.py": TARGET,
        "tests/__init__.py": "",
        "tests/test_pipeline.py": USER_TEST,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def plant_fault(root: Path) -> None:
    """Normalise with the batch's own statistics (a train/serve bug the suite must name)."""
    path = root / "src" / PACKAGE / "pipeline.py"
    text = path.read_text()
    correct = "def normalize(batch):\n    return (batch - MEAN) / STD\n"
    assert correct in text
    path.write_text(text.replace(correct, PER_BATCH_NORMALISATION))
