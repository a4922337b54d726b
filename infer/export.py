"""``hier export``: a trained run as one graph, images -> node probabilities, for ONNX Runtime or OpenVINO alone.

The graph holds everything after the letterbox: backbone, embedding block, head, the division by the run's
temperature and the head's node probabilities. What the graph cannot hold travels in the file's metadata as
JSON strings: the taxonomy, the preprocessing (mean, std, interpolation, image size, keep_size), the
decoding rule and the calibrated thresholds, so a reader needs the file and an image decoder, not hier
(docs/export.md shows the whole reader).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from hier import runs
from hier.core.errors import InputError
from hier.core.files import atomic_write_bytes, check_output_file
from hier.infer.answer import decode_rule
from hier.runs.calibration import Calibration
from hier.runs.layout import read_prior
from hier.runs.model import with_preprocessing

FORMATS = ("onnx", "openvino")
# 18: ScatterElements with reduction "max", which the spheremulti heads' max_up needs (16 and 17 have only
# add and mul; ONNX Runtime runs it under 17 too, a stricter reader need not).
OPSET = 18


def export_run(run_dir, out: Path, *, fmt: str | None = None, force: bool = False) -> Path:
    """Write the run's inference graph to ``out`` (.onnx, or .xml with its .bin for OpenVINO) with its
    metadata; ``fmt`` defaults to the suffix. Returns the file written."""
    run_dir, out = runs.check_run_dir(run_dir), Path(out)
    fmt = fmt or ("openvino" if out.suffix.lower() == ".xml" else "onnx")
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    wanted = ".xml" if fmt == "openvino" else ".onnx"
    if out.suffix.lower() != wanted:
        raise InputError(f"a {fmt} export is a {wanted} file", path=out)
    if runs.read_config(run_dir).get("tta"):  # ONNX Runtime cannot yet load the 8-view graph torch writes
        raise InputError("this run answers from the mean of 8 dihedral views (tta), which the export cannot hold "
                         "yet; export a run fitted with --set tta=false", path=run_dir / runs.CONFIG)
    check_output_file(out, force=force, inputs=runs.run_files(run_dir))
    if fmt == "openvino":
        check_output_file(out.with_suffix(".bin"), force=force, inputs=runs.run_files(run_dir))
    model, taxonomy, config = runs.load_trained(run_dir)
    calibration = Calibration.load(run_dir)
    temperature = calibration.temperature if calibration is not None else 1.0
    metadata = run_metadata(run_dir, model, config, calibration)
    write = export_openvino if fmt == "openvino" else export_onnx
    return write(model, len(taxonomy), config["image_size"], temperature, out, metadata)


def run_metadata(run_dir: Path, model: nn.Module, config: dict, calibration: Calibration | None) -> dict:
    """What a reader needs besides the graph: the taxonomy, the preprocessing, the answer rule's inputs."""
    own = with_preprocessing(config, model.backbone)
    return {
        "format": "hier-export", "version": 1,
        "taxonomy": json.loads((Path(run_dir) / runs.TAXONOMY).read_text(encoding="utf-8")),
        "preprocessing": {"image_size": config["image_size"], "keep_size": config["keep_size"],
                          "mean": own["mean"], "std": own["std"], "interpolation": own["interpolation"],
                          "letterbox": "aspect kept, padded with the median colour of the image border"},
        "decode_rule": decode_rule(config),
        "temperature": calibration.temperature if calibration is not None else 1.0,
        "class_mix": class_mix(run_dir, config),
        "calibration": None if calibration is None else {
            "delta": calibration.delta, "n": calibration.n, "split": calibration.split,
            "guarantee": calibration.guarantee,
            "thresholds": [{"level": e["level"], "threshold": e["threshold"]} for e in calibration.table]},
    }


def class_mix(run_dir: Path, config: dict) -> dict:
    """Which mix of classes the graph's probabilities are for (the prior shift is inside the graph)."""
    named = config["prior"] in ("train", "uniform")
    record = None if named else read_prior(run_dir)
    return {"prior": config["prior"] if named else "file", "long_tail": config["long_tail"],
            "proportions": None if record is None else record["proportions"]}


@torch.onnx.symbolic_helper.parse_args("v", "i", "v", "v", "none")
def _index_add(g, data, dim: int, index, source, alpha=None):
    """aten::index_add as ScatterElements with reduction "add", which sums repeated indices.

    TreeTensors.sum_up adds every child into its parent, so siblings repeat their parent's index; torch's own
    translation refuses a level with more children than parents (the root's always has) and would scatter,
    the last sibling winning, elsewhere. hier never passes alpha.
    """
    axes = [axis for axis in range(source.type().dim()) if axis != dim]
    spread = g.op("Unsqueeze", index, g.op("Constant", value_t=torch.tensor(axes, dtype=torch.long)))
    indices = g.op("Expand", spread, g.op("Shape", source))
    return g.op("ScatterElements", data, indices, source, axis_i=dim, reduction_s="add")


class Probabilities(nn.Module):
    """The model's node probabilities of ``scores / temperature``, as ``hier predict`` computes them."""

    def __init__(self, model: nn.Module, temperature: float):
        super().__init__()
        self.model, self.temperature = model, float(temperature)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.node_probabilities(self.model(images) / self.temperature)


def onnx_model(model: nn.Module, taxonomy_node_count: int, image_size: int, temperature: float,
               metadata: dict) -> bytes:
    """The inference graph as ONNX bytes: input ``images`` [B, 3, S, S] float32, output ``probabilities``
    [B, nodes], with ``metadata`` in metadata_props (each value as a JSON string)."""
    import onnx

    graph = Probabilities(model, temperature)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            width = graph(torch.zeros(2, 3, image_size, image_size)).shape[-1]
        if width != taxonomy_node_count:
            raise InputError(f"the model gives {width} node probabilities for {taxonomy_node_count} taxonomy nodes")
        buffer = io.BytesIO()
        torch.onnx.register_custom_op_symbolic("aten::index_add", _index_add, OPSET)
        with warnings.catch_warnings():
            # torch >= 2.9 calls the TorchScript exporter legacy; the dynamo one needs onnxscript, not a dependency
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", "Constant folding")  # a strided Slice left for the runtime to fold
            torch.onnx.export(graph, (torch.zeros(2, 3, image_size, image_size),), buffer, dynamo=False,
                              opset_version=OPSET, input_names=["images"], output_names=["probabilities"],
                              dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}})
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::index_add", OPSET)
        model.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    return proto.SerializeToString()


def export_onnx(model: nn.Module, taxonomy_node_count: int, image_size: int, temperature: float, out_path: Path,
                metadata: dict) -> Path:
    """Write the inference graph (see :func:`onnx_model`) to ``out_path``, atomically."""
    atomic_write_bytes(out_path, onnx_model(model, taxonomy_node_count, image_size, temperature, metadata))
    return Path(out_path)


def export_openvino(model: nn.Module, taxonomy_node_count: int, image_size: int, temperature: float, out_path: Path,
                    metadata: dict) -> Path:
    """The same graph as OpenVINO IR: ``out_path`` (.xml) and its .bin, the metadata in the model's rt_info
    under ``hier``. Weights stay f32 (OpenVINO would halve them to f16 by default)."""
    import openvino as ov

    converted = ov.convert_model(io.BytesIO(onnx_model(model, taxonomy_node_count, image_size, temperature, {})))
    for key, value in metadata.items():
        converted.set_rt_info(json.dumps(value), ["hier", key])
    out_path = Path(out_path).with_suffix(".xml")
    # written beside the target and moved in, .bin first: a reader never finds an .xml without its weights
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.") as staging:
        ov.save_model(converted, Path(staging) / out_path.name, compress_to_fp16=False)
        os.replace(Path(staging) / out_path.with_suffix(".bin").name, out_path.with_suffix(".bin"))
        os.replace(Path(staging) / out_path.name, out_path)
    return out_path
