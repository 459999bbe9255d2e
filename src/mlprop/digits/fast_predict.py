"""A fast serving path for the reference model, with the contract of ``pipeline.predict``.

``FastPredictor`` serves raw uint8 ``(N, H, W)`` images and returns probabilities ``(N, 10)``
like :func:`mlprop.digits.pipeline.predict`, and adds, each as an option:

- ``torch.inference_mode`` (always) and ``channels_last`` weights and activations;
- precision: ``"fp32"`` (true fp32: TF32 convolutions are switched off on CUDA), ``"tf32"``,
  ``"bf16"`` (weights and activations cast to bfloat16) or ``"bf16-autocast"``
  (``torch.autocast``); logits are cast to float32 before the softmax in every mode;
- uint8 upload (4x fewer bytes than float32) through pinned host memory, with resizing and
  normalization done on the device;
- CUDA graphs for fixed batch sizes (``graph_batches``): a batch is padded up to the next
  captured size (rows are independent, so padding never changes a row), a larger one is
  served in chunks of the largest; the host-to-device copy, the network and the copy back
  are one graph when the platform allows it;
- ``torch.compile`` (``compile=True``) before graph capture.

On the CPU (``device="cpu"``, or ``"auto"`` without CUDA) the defaults are the plain fp32
path with the exact arithmetic of :func:`mlprop.digits.preprocess.preprocess`, and the
probabilities are bit-identical to ``pipeline.predict``'s.
``tests/test_fast_predict.py`` checks that every option gives the predictions of the plain
fp32 path (argmax agreement and a probability tolerance per precision).

``target`` is the reference target with this serving path, for the property suite:
``pytest properties --mlprop-target mlprop.digits.fast_predict:target``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlprop.digits.preprocess import MEAN, SCHEMA, SIZE, STD

PRECISIONS = ("fp32", "tf32", "bf16", "bf16-autocast")
DEFAULT_GRAPH_BATCHES = (1, 64, 1024, 8192)
GRAPH_WARMUP_CALLS = 3


def to_model_input(images: torch.Tensor, *, fused: bool = False) -> torch.Tensor:
    """uint8 ``(N, H, W)`` on any device -> normalized float32 ``(N, 1, SIZE, SIZE)``.

    ``fused=False`` repeats :func:`mlprop.digits.preprocess.preprocess`'s arithmetic op for op
    (bit-identical on the CPU); ``fused=True`` computes ``x * a + b`` in one pass (within
    5e-7 of it, fewer kernels on a GPU).
    """
    batch = images.to(torch.float32).unsqueeze(1)
    if tuple(batch.shape[-2:]) != (SIZE, SIZE):
        batch = F.interpolate(batch, size=(SIZE, SIZE), mode="bilinear", align_corners=False,
                              antialias=True).clamp(0.0, 255.0)
    if fused:
        return batch * (1.0 / (255.0 * STD)) + (-MEAN / STD)
    scaled = (batch / 255.0).clamp(0.0, 1.0)
    return (scaled - MEAN) / STD


@contextlib.contextmanager
def _cudnn_tf32(allowed: bool) -> Iterator[None]:
    """Set cuDNN's TF32 switch for the block (fp32 convolutions run as TF32 when it is on)."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}") \
            from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {resolved} requested but CUDA is not available")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return resolved


def _check_batches(batches: Sequence[int]) -> tuple[int, ...]:
    chosen = tuple(sorted({int(b) for b in batches}))
    if not chosen or chosen[0] < 1:
        raise ValueError(f"graph_batches: expected positive batch sizes, got {batches!r}")
    return chosen


def bucket_for(count: int, batches: Sequence[int]) -> int:
    """The smallest captured batch size that holds ``count`` rows (else the largest)."""
    for size in batches:
        if size >= count:
            return size
    return batches[-1]


def chunks(count: int, batches: Sequence[int]) -> list[tuple[int, int, int]]:
    """Split ``count`` rows into ``(start, stop, bucket)`` pieces served by captured sizes."""
    pieces, start, largest = [], 0, batches[-1]
    while start < count:
        stop = min(count, start + largest)
        pieces.append((start, stop, bucket_for(stop - start, batches)))
        start = stop
    return pieces


class FastPredictor:
    """A compiled-once serving path: ``predictor(images) -> probabilities``.

    ``device``: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
    ``channels_last``, ``cuda_graphs`` and ``fused_normalize`` default to on for CUDA and
    off for the CPU. ``validate`` checks the input against the reference schema (as
    ``pipeline.predict`` does) before anything else.
    """

    def __init__(self, model: nn.Module | None = None, *, device: str | torch.device = "auto",
                 precision: str = "fp32", channels_last: bool | None = None,
                 cuda_graphs: bool | None = None, compile: bool = False,
                 graph_batches: Sequence[int] = DEFAULT_GRAPH_BATCHES,
                 fused_normalize: bool | None = None, validate: bool = True) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
        self.device = _resolve_device(device)
        on_cuda = self.device.type == "cuda"
        self.precision = precision
        self.channels_last = on_cuda if channels_last is None else bool(channels_last)
        self.cuda_graphs = on_cuda if cuda_graphs is None else bool(cuda_graphs)
        if self.cuda_graphs and not on_cuda:
            raise ValueError("cuda_graphs: CUDA graphs need a CUDA device")
        self.fused_normalize = on_cuda if fused_normalize is None else bool(fused_normalize)
        self.graph_batches = _check_batches(graph_batches)
        self.validate = validate
        self.compiled = bool(compile)
        if model is None:
            from mlprop.digits.pipeline import trained_model

            model = trained_model()
        self.model = self._prepare(model)
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.forward
        if compile:
            self._forward = torch.compile(self.forward, mode="max-autotune-no-cudagraphs",
                                          dynamic=False)
        self._graphs: dict[tuple[int, int, int, bool], CudaGraphRunner] = {}
        self._pinned: dict[tuple[int, ...], torch.Tensor] = {}

    def _prepare(self, model: nn.Module) -> nn.Module:
        import copy

        prepared = copy.deepcopy(model).eval().requires_grad_(False).to(self.device)
        if self.precision == "bf16":
            prepared = prepared.to(torch.bfloat16)
        if self.channels_last:
            prepared = prepared.to(memory_format=torch.channels_last)
        return prepared

    def describe(self) -> str:
        """One line: device, precision and the options in force."""
        name = (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                else "cpu")
        options = [self.precision]
        options += ["channels_last"] if self.channels_last else []
        options += ["cuda_graphs"] if self.cuda_graphs else []
        options += ["compile"] if self.compiled else []
        options += ["fused_normalize"] if self.fused_normalize else []
        return f"{name}: {', '.join(options)}"

    def _flags(self) -> contextlib.AbstractContextManager:
        """Global switches the precision needs around a call or a capture (cuDNN TF32)."""
        if self.device.type == "cuda" and self.precision in ("fp32", "tf32"):
            return _cudnn_tf32(self.precision == "tf32")
        return contextlib.nullcontext()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Device-resident uint8 ``(N, H, W)`` -> float32 probabilities ``(N, 10)``.

        Pure computation (no validation, no host copies, no global switches): the unit
        that CUDA graphs capture and ``torch.compile`` compiles. Call :meth:`run_device`
        to get the precision's cuDNN settings too.
        """
        inputs = to_model_input(images, fused=self.fused_normalize)
        if self.precision == "bf16":
            inputs = inputs.to(torch.bfloat16)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.precision == "bf16-autocast":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                logits = self.model(inputs)
        else:
            logits = self.model(inputs)
        return torch.softmax(logits.to(torch.float32), dim=1)

    def run_device(self, images: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` (compiled if asked) in inference mode with the precision's
        switches: device-resident uint8 in, probabilities on the device out (async)."""
        with torch.inference_mode(), self._flags():
            return self._forward(images)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Raw uint8 ``(N, H, W)`` -> probabilities ``(N, 10)`` as float32 NumPy."""
        if self.validate:
            SCHEMA.validate(images)
        count = images.shape[0]
        if count == 0:
            return np.zeros((0, SCHEMA.num_classes), dtype=np.float32)
        if self.device.type == "cpu":
            return self.run_device(torch.from_numpy(np.ascontiguousarray(images))).numpy()
        with torch.inference_mode():
            if self.cuda_graphs:
                return self._predict_graphed(images)
            return self._predict_eager_cuda(images)

    def _pinned_staging(self, shape: tuple[int, ...]) -> torch.Tensor:
        if shape not in self._pinned:
            self._pinned[shape] = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        return self._pinned[shape]

    def _predict_eager_cuda(self, images: np.ndarray) -> np.ndarray:
        staging = self._pinned_staging(images.shape)
        staging.numpy()[...] = images
        on_device = staging.to(self.device, non_blocking=True)
        return self.run_device(on_device).cpu().numpy()  # .cpu() waits for the result

    def graph(self, batch: int, height: int, width: int, *,
              host_io: bool = True) -> CudaGraphRunner:
        """The captured graph for one input shape (captured on first use)."""
        key = (batch, height, width, host_io)
        if key not in self._graphs:
            with self._flags():  # cuDNN picks its algorithms (TF32 or not) at capture
                self._graphs[key] = CudaGraphRunner(self._forward, (batch, height, width),
                                                    self.device, host_io=host_io)
        return self._graphs[key]

    @property
    def graphs(self) -> dict[tuple[int, int, int, bool], CudaGraphRunner]:
        """The graphs captured so far, by ``(batch, height, width, host_io)``."""
        return dict(self._graphs)

    def _predict_graphed(self, images: np.ndarray) -> np.ndarray:
        _, height, width = images.shape
        out = np.empty((images.shape[0], SCHEMA.num_classes), dtype=np.float32)
        for start, stop, bucket in chunks(images.shape[0], self.graph_batches):
            out[start:stop] = self.graph(bucket, height, width).run(images[start:stop])
        return out


class CudaGraphRunner:
    """One CUDA graph of ``forward`` for a fixed input shape.

    With ``host_io`` the graph also holds the upload from a pinned host buffer and the copy
    of the probabilities back into another; if the platform refuses to capture those
    copies, they run outside the graph (``io_in_graph`` says which happened).
    ``input``/``output`` are the static device tensors (fill ``input``, call ``replay``).
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor],
                 shape: tuple[int, int, int], device: torch.device, *,
                 host_io: bool = True) -> None:
        self.shape = shape
        self.device = device
        self.input = torch.zeros(shape, dtype=torch.uint8, device=device)
        self.host_io = host_io
        self.host_input = self.host_output = None
        if host_io:
            self.host_input = torch.zeros(shape, dtype=torch.uint8, pin_memory=True)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(GRAPH_WARMUP_CALLS):  # cuDNN autotuning, lazy init, compilation
                output = forward(self.input)
        torch.cuda.current_stream(device).wait_stream(side)
        torch.cuda.synchronize(device)
        if host_io:
            self.host_output = torch.empty(tuple(output.shape), dtype=output.dtype,
                                           pin_memory=True)
        self.io_in_graph = False
        self.graph = torch.cuda.CUDAGraph()
        if host_io:
            try:
                self._capture(forward, with_io=True)
                self.io_in_graph = True
            except RuntimeError:
                torch.cuda.synchronize(device)
                self.graph = torch.cuda.CUDAGraph()
        if not self.io_in_graph:
            self._capture(forward, with_io=False)

    def _capture(self, forward: Callable[[torch.Tensor], torch.Tensor], *,
                 with_io: bool) -> None:
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            if with_io:
                self.input.copy_(self.host_input, non_blocking=True)
            self.output = forward(self.input)
            if with_io:
                self.host_output.copy_(self.output, non_blocking=True)

    def replay(self) -> None:
        """Run the graph on the current stream (asynchronously)."""
        self.graph.replay()

    def run(self, images: np.ndarray) -> np.ndarray:
        """Serve up to ``shape[0]`` images through the graph; waits for the result."""
        count = images.shape[0]
        self.host_input.numpy()[:count] = images
        if not self.io_in_graph:
            self.input.copy_(self.host_input, non_blocking=True)
        self.graph.replay()
        if not self.io_in_graph:
            self.host_output.copy_(self.output, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return self.host_output.numpy()[:count].copy()


_SERVING: dict[str, FastPredictor] = {}


def predict(images: np.ndarray) -> np.ndarray:
    """The reference serving contract on the fast path (CUDA when available, else CPU)."""
    if "default" not in _SERVING:
        _SERVING["default"] = FastPredictor()
    return _SERVING["default"](images)


def _fast_target():
    from mlprop.digits import target as reference

    return dataclasses.replace(reference, name="digits-fast", predict=predict)


target = _fast_target()
