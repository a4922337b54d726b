"""Where a backbone runs: on the CPU, exported once to ONNX and run by OpenVINO or ONNX Runtime; elsewhere torch.

Inference and the frozen feature pass compute the same function on every batch, so the backbone's graph can
be handed to a runtime that fuses and schedules it for the CPU. On 2 AVX-512 cores EfficientNet-Lite0 at
160 px runs about 2.7x faster in ONNX Runtime and 3.5x in OpenVINO than in eager torch channels-last, with
features within 2e-5 of eager's (bench/runtimes.py). The export is cached under a digest of the weights,
image size and torch version: a changed backbone is exported again, an unchanged one is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hier.core.errors import InputError
from hier.core.files import atomic_write_bytes
from hier.data.images import loader_workers

from .device import as_input, autocast

RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")
PRECISIONS = ("f32", "bf16")
# auto takes the fastest one installed (bench_runtimes.py): OpenVINO, then ONNX Runtime, then eager torch.
PREFERENCE = ("openvino", "onnxruntime")
INSTALL = {"openvino": "pip install hier[openvino]", "onnxruntime": "pip install hier[onnx]"}
# 17 holds every op of the built-in backbones; the whole-model export needs 18 (hier.infer.export).
OPSET = 17
# THROUGHPUT: one stream per core, each taking part of the batch, beat LATENCY's one stream spread over all
# cores by 10-60% at batch 64 on 2 cores, the more so when other work shares them (bench/runtimes.py).
OPENVINO_HINT = "THROUGHPUT"

Runner = Callable[[torch.Tensor], torch.Tensor]


def _module(name: str):
    """The runtime's module, or None where it is not installed (or fails to import)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available_runtimes() -> list[str]:
    """The runtimes this installation can use, fastest last (torch is always there)."""
    return ["torch", *(name for name in reversed(PREFERENCE) if _module(name) is not None)]


def resolve_runtime(runtime: str) -> str:
    """``auto`` as the fastest installed runtime; a named one must be installed."""
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be one of {', '.join(RUNTIMES)} (got {runtime!r})", where="runtime")
    if runtime == "auto":
        return next((name for name in PREFERENCE if _module(name) is not None), "torch")
    if runtime != "torch" and _module(runtime) is None:
        raise InputError(f"runtime {runtime!r} is not installed: {INSTALL[runtime]}", where="runtime")
    return runtime


def backbone_runner(backbone: nn.Module, config: dict, device: torch.device, cache_dir: Path | None) -> Runner:
    """A function: a batch of images from the loader -> the backbone's features [B, F] float32 on ``device``.

    On the CPU through ``config["runtime"]`` (runs made before the setting: auto) at ``runtime_precision``;
    on a GPU, or with runtime ``torch``, the module itself (channels-last, autocast). The backbone is run as it
    is (eval mode for inference and the feature pass). ``cache_dir`` keeps the export (None: in memory).
    """
    runtime = resolve_runtime(config.get("runtime") or "auto")
    if device.type != "cpu" or runtime == "torch":
        return _torch_runner(backbone, config, device)
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", config["backbone"])
    return feature_runner(backbone, config["image_size"], runtime, cache_dir, key,
                          precision=config.get("runtime_precision") or "f32")


def image_workers(config: dict, device: torch.device, requested: int | None) -> int:
    """DataLoader processes for a pass through the backbone: as asked; else none where an exported runtime
    keeps every core busy (decoding between batches in this process ran 257 images/s against 204 with two
    worker processes taking cores from it, bench/runtimes.py); else ``loader_workers``'s default."""
    if requested is None and device.type == "cpu" and resolve_runtime(config.get("runtime") or "auto") != "torch":
        return 0
    return loader_workers(requested)


@contextlib.contextmanager
def torch_beside_the_runtime(config: dict, device: torch.device, workers: int):
    """While an exported runtime has the cores and this process decodes the images (``workers`` 0), torch's
    own small ops (decoding, letterboxing, the head) run on one thread: a pool of two woke for each of them
    and waited on the runtime's threads, 5 ms an image instead of under 1 (bench/runtimes.py)."""
    threads = torch.get_num_threads()
    exported = device.type == "cpu" and resolve_runtime(config.get("runtime") or "auto") != "torch"
    if exported and workers == 0:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def feature_runner(backbone: nn.Module, image_size: int, runtime: str, cache_dir: Path | None = None,
                   key: str = "backbone", *, precision: str = "f32") -> Runner:
    """A function images [B, 3, image_size, image_size] float32 -> features [B, F] float32, on the CPU by an
    exported runtime (``onnxruntime`` or ``openvino``).

    The backbone must be on the CPU; the export is of its eval mode. ``cache_dir`` keeps the export as
    ``<key>-<digest>.onnx`` (None: in memory, for this runner only). ``precision`` bf16 is OpenVINO's only:
    twice as fast, but Lite0's features then differ from f32 by 0.02 on average and up to 0.8.
    """
    if precision not in PRECISIONS or (precision == "bf16" and runtime != "openvino"):
        raise InputError(f"precision {precision!r}: f32, or bf16 with runtime openvino", where="runtime_precision")
    model = exported_backbone(backbone, image_size, cache_dir, key)
    return _onnxruntime_runner(model) if runtime == "onnxruntime" else _openvino_runner(model, precision)


def _torch_runner(backbone: nn.Module, config: dict, device: torch.device) -> Runner:
    @torch.no_grad()
    def run(images: torch.Tensor) -> torch.Tensor:
        with autocast(device, config):
            return backbone(as_input(images, device, config)).float()

    return run


# ---- export ---------------------------------------------------------------------------------------


def digest(backbone: nn.Module, image_size: int) -> str:
    """Names one export: the weights and buffers, the architecture, the image size, and the torch and opset
    that wrote the graph. Not the runtime's version: both read the same file, and each compiles it anew
    (0.1-0.3 s), so one file serves both and a runtime upgrade needs no export."""
    h = hashlib.sha256()
    h.update(repr((image_size, OPSET, torch.__version__, str(backbone))).encode())
    for name, tensor in backbone.state_dict().items():
        h.update(name.encode())
        # reshape(-1): the values in logical order, so a channels-last copy of the weights has the same digest
        h.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def exported_backbone(backbone: nn.Module, image_size: int, cache_dir: Path | None, key: str) -> Path | bytes:
    """The ONNX file of this backbone from the cache, exported there first when missing or stale; the
    ONNX bytes themselves without a cache."""
    if cache_dir is None:
        return onnx_bytes(backbone, image_size)
    path = Path(cache_dir) / f"{key}-{digest(backbone, image_size)}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, onnx_bytes(backbone, image_size))
        for stale in path.parent.glob(f"{key}-*.onnx"):  # other weights or versions under this key
            if stale != path:
                stale.unlink(missing_ok=True)
    return path


def onnx_bytes(backbone: nn.Module, image_size: int) -> bytes:
    """The backbone in eval mode as ONNX, with a dynamic batch axis (the last batch of a pass is smaller)."""
    example = torch.zeros(2, 3, image_size, image_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch >= 2.9 calls the TorchScript exporter legacy; the dynamo one needs onnxscript, not a dependency
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "Constant folding")  # a strided Slice left for the runtime to fold
        torch.onnx.export(backbone, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}})
    return buffer.getvalue()


# ---- runtimes -------------------------------------------------------------------------------------


def _as_array(images: torch.Tensor) -> np.ndarray:
    """NCHW float32 in memory order, as both runtimes read it (a channels-last batch is copied once)."""
    return images.detach().cpu().float().contiguous().numpy()


def _onnxruntime_runner(model: Path | bytes) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1  # one chain of convolutions: nothing runs side by side
    options.log_severity_level = 3  # errors only: its shape-inference notes are not the user's concern
    session = ort.InferenceSession(str(model) if isinstance(model, Path) else model, options,
                                   providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"images": _as_array(images)})[0])

    return run


def _openvino_runner(model: Path | bytes, precision: str, hint: str = OPENVINO_HINT) -> Runner:
    import openvino as ov

    core = ov.Core()
    # reading the ONNX each time costs ~0.05 s, as much as an IR file would: only the ONNX is cached
    compiled = core.compile_model(core.read_model(str(model) if isinstance(model, Path) else model), "CPU", {
        "PERFORMANCE_HINT": hint,
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        # explicit: on CPUs with bf16 (AVX512_BF16, AMX) OpenVINO computes in bf16 unless told (features move by 0.8)
        "INFERENCE_PRECISION_HINT": precision,
    })
    # as many requests as the hint made streams; each takes its share of the batch, all in flight at once
    streams = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    requests = [compiled.create_infer_request() for _ in range(streams)]

    def run(images: torch.Tensor) -> torch.Tensor:
        parts = [part for part in np.array_split(_as_array(images), len(requests)) if len(part)]
        for request, part in zip(requests, parts):
            request.start_async({0: part}, share_inputs=True)
        outputs = []
        for request, _ in zip(requests, parts):
            request.wait()
            outputs.append(request.get_output_tensor(0).data.copy())  # the request's memory is reused next batch
        return torch.from_numpy(np.concatenate(outputs))

    return run
