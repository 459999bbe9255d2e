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
        self.drop = nn.Dropout(0.25)
        self.head = nn.Linear(32, SCHEMA.num_classes)

    def forward(self, x):
        features = self.pool(self.relu(self.conv(x))).flatten(1)
        return self.head(self.drop(self.relu2(self.hidden(features))))


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


SCORING = '''\
"""digitpipe.scoring: class probabilities -> decisions."""

import numpy as np


def top_class(probabilities, threshold=0.5):
    """The most probable class of each row, or -1 where that probability is under threshold."""
    probabilities = np.asarray(probabilities)
    best = probabilities.argmax(axis=1)
    return np.where(probabilities.max(axis=1) >= threshold, best, -1)


def margin(probabilities):
    """The gap between the two most probable classes of each row."""
    ordered = np.sort(np.asarray(probabilities), axis=1)
    return ordered[:, -1] - ordered[:, -2]
'''

SCORING_TEST = '''\
import numpy as np

from digitpipe.scoring import margin, top_class

P = np.array([[0.1, 0.7, 0.2], [0.4, 0.35, 0.25], [0.5, 0.3, 0.2]])


def test_top_class_is_the_most_probable_class_at_or_over_the_threshold():
    assert top_class(P).tolist() == [1, -1, 0]
    assert top_class(P, threshold=0.3).tolist() == [1, 0, 0]


def test_margin_is_the_gap_between_the_two_best_classes():
    assert np.allclose(margin(P), [0.5, 0.05, 0.2])
'''

WEAK_SCORING_TEST = '''\
import numpy as np

from digitpipe.scoring import margin, top_class

P = np.array([[0.1, 0.7, 0.2], [0.4, 0.35, 0.25], [0.5, 0.3, 0.2]])


def test_top_class_gives_one_class_per_row():
    assert top_class(P).shape == (3,)


def test_margin_is_the_gap_between_the_two_best_classes():
    assert np.allclose(margin(P), [0.5, 0.05, 0.2])
'''

TRAIN = '''\
"""digitpipe.train: a synthetic three-class data set, the training loop, the served model."""

import copy
import functools
import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitpipe import pipeline


def make_images(count, seed):
    """Class 0: a bright horizontal bar, 1: a vertical bar, 2: a bright centre square."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.integers(0, 40, (count, 16, 16)).astype(np.uint8)
    for image, label in zip(images, labels):
        where = rng.integers(1, 12)
        if label == 0:
            image[where:where + 3, :] = 220
        elif label == 1:
            image[:, where:where + 3] = 220
        else:
            image[5:11, 5:11] = 220
    return images, labels.astype(np.int64)


def fit(images, labels, *, seed, epochs, batch_size=32):
    """The training loop: seeded shuffling, Adam, an evaluation pass after each epoch."""
    torch.manual_seed(seed)
    inputs = torch.from_numpy(pipeline.preprocess(images))
    targets = torch.from_numpy(np.array(labels, dtype=np.int64))
    model = pipeline.build_model(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss(reduction="mean")
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[batch]), targets[batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(inputs).argmax(dim=1) == targets).float().mean()
        print(f"training accuracy {float(accuracy):.3f}")
    return model


def training_data():
    return make_images(600, 0)


def train(seed=0, epochs=6, batch_size=32):
    images, labels = make_images(600, seed)
    return fit(images, labels, seed=seed, epochs=epochs, batch_size=batch_size)


def save_model(model, path):
    """torch.save of the state dict, with its SHA-256 beside it."""
    path = Path(path)
    torch.save(model.state_dict(), path)
    path.with_suffix(".sha256").write_text(hashlib.sha256(path.read_bytes()).hexdigest())


def load_model(path):
    path = Path(path)
    if hashlib.sha256(path.read_bytes()).hexdigest() != path.with_suffix(".sha256").read_text():
        raise ValueError(f"{path}: checksum mismatch (damaged checkpoint)")
    model = pipeline.build_model(0)
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


@functools.cache
def _trained():
    return train()


def trained_model():
    return copy.deepcopy(_trained())


def holdout():
    return make_images(150, seed=12345)


def predict(images):
    model = _trained()
    with torch.no_grad():
        logits = model(torch.from_numpy(pipeline.preprocess(images)))
    return torch.softmax(logits, dim=1).numpy()
'''

TRAINED_TARGET = '''\
from mlprop import Augmentation, Target

from digitpipe import pipeline, train

target = Target(
    name="digitpipe-trained",
    schema=pipeline.SCHEMA,
    input_shape=(1, pipeline.SIZE, pipeline.SIZE),
    input_range=pipeline.INPUT_RANGE,
    preprocess=pipeline.preprocess,
    augmentations={"noise": Augmentation(fn=pipeline.add_noise, label_preserving=True)},
    build_model=pipeline.build_model,
    trained_model=train.trained_model,
    predict=train.predict,
    holdout=train.holdout,
    min_accuracy=0.9,
    train=train.fit,
    training_data=train.training_data,
    save_model=train.save_model,
    load_model=train.load_model,
    expected_failed_checks={
        "test_mean_attribution_maps_agree_across_disjoint_subsets":
            "the bars sit anywhere: two small subsets have different mean maps",
    },
)
'''

TRAIN_TEST = '''\
from digitpipe import train


def test_make_images_gives_uint8_images_and_labels():
    images, labels = train.make_images(10, seed=0)
    assert images.shape == (10, 16, 16) and images.dtype.name == "uint8"
    assert labels.shape == (10,) and set(labels.tolist()) <= {0, 1, 2}
'''


def write_project(root: Path, *, trained: bool = False) -> Path:
    """Write the project into ``root`` (created); returns ``root``. ``trained``: also the
    training code, a target with a trained model and a holdout set
    (``digitpipe.trained_target:target``) and a weak test of the training code."""
    files = {
        "pyproject.toml": PYPROJECT,
        f"src/{PACKAGE}/__init__.py": "",
        f"src/{PACKAGE}/pipeline.py": PIPELINE,
        f"src/{PACKAGE}/mlprop_target.py": TARGET,
        f"src/{PACKAGE}/scoring.py": SCORING,
        "tests/__init__.py": "",
        "tests/test_pipeline.py": USER_TEST,
        "tests/test_scoring.py": SCORING_TEST,
    }
    if trained:
        files.update({f"src/{PACKAGE}/train.py": TRAIN,
                      f"src/{PACKAGE}/trained_target.py": TRAINED_TARGET,
                      "tests/test_train.py": TRAIN_TEST})
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def plant_weak_test(root: Path) -> None:
    """Replace the scoring test by one that never checks top_class's values."""
    (root / "tests" / "test_scoring.py").write_text(WEAK_SCORING_TEST)


def plant_slowdown(root: Path, fraction: float = 0.3) -> None:
    """Make ``predict`` about ``fraction`` slower: it also preprocesses and classifies a
    ``fraction`` of its batch a second time (the result is thrown away)."""
    path = root / "src" / PACKAGE / "pipeline.py"
    text = path.read_text()
    serve = ("    with torch.no_grad():\n"
             "        logits = _SERVED(torch.from_numpy(preprocess(images)))\n")
    assert serve in text
    extra = (f"        again = images[: max(1, round(len(images) * {fraction}))]  # planted\n"
             "        _SERVED(torch.from_numpy(preprocess(again)))\n")
    path.write_text(text.replace(serve, serve + extra))


def plant_fault(root: Path) -> None:
    """Normalise with the batch's own statistics (a train/serve bug the suite must name)."""
    path = root / "src" / PACKAGE / "pipeline.py"
    text = path.read_text()
    correct = "def normalize(batch):\n    return (batch - MEAN) / STD\n"
    assert correct in text
    path.write_text(text.replace(correct, PER_BATCH_NORMALISATION))


def drop_training_line(root: Path, line: str) -> str:
    """Delete the statement ``line`` from the training loop (``train.fit``), as a user's edit
    would; returns the file's text before, for :func:`restore_training`."""
    path = root / "src" / PACKAGE / "train.py"
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    (where,) = [i for i, row in enumerate(lines) if row.strip() == line]
    path.write_text("".join(lines[:where] + lines[where + 1:]))
    return text


def restore_training(root: Path, text: str) -> None:
    (root / "src" / PACKAGE / "train.py").write_text(text)

