"""``hier export``: the run's graph gives the run's node probabilities in ONNX Runtime alone (every built-in head,
real plankton images), carries what a reader needs, and the reader of docs/export.md answers as hier does."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hier import runs
from hier.data.images import image_transform, load_image
from hier.infer import export
from hier.infer.calibration import calibrate
from hier.plugins import create_backbone, create_head
from hier.runs.model import HierNet
from hier.taxo import Taxonomy

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the extra hier[onnx]")
pytest.importorskip("onnx", reason="onnx is the extra hier[onnx]")
HEADS = ("classifier", "arcface", "spheremulti", "spheremultihier", "arcface-multihead")
ROOT = Path(__file__).parents[2]
PLANKTON = sorted((ROOT / "tests" / "data" / "phytoplankton").rglob("*.jpg"))[:12]


@pytest.fixture(scope="module")
def uneven() -> Taxonomy:
    """Leaves at depths 1, 2 and 3, parents with one, two and three children."""
    edges = [("r", None), ("a", "r"), ("b", "r"), ("c", "r"), ("a1", "a"), ("a2", "a"), ("a1x", "a1"), ("a1y", "a1"),
             ("a1z", "a1"), ("b1", "b"), ("b2", "b"), ("b2p", "b2")]
    return Taxonomy([{"id": i, "name": i, "parent": p} for i, p in edges])


def probabilities_in_onnxruntime(path: Path, images: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"images": images.numpy()})[0]


@pytest.mark.parametrize("head", HEADS)
def test_every_head_exports_its_node_probabilities(head, uneven, tmp_path):
    torch.manual_seed(0)
    backbone, features = create_backbone("smallcnn", width=8, depth=3)
    model = HierNet(backbone, features, create_head(head, in_features=32, taxonomy=uneven), 32, 0.1).eval()
    path = export.export_onnx(model, len(uneven), 48, 1.7, tmp_path / "model.onnx", {"thresholds": [0.9]})
    for batch in (1, 7):  # a dynamic batch axis
        images = torch.randn(batch, 3, 48, 48)
        with torch.no_grad():
            expected = model.node_probabilities(model(images) / 1.7)
        assert np.abs(probabilities_in_onnxruntime(path, images) - expected.numpy()).max() < 1e-4


@pytest.fixture(scope="module")
def calibrated(trained, tmp_path_factory) -> Path:
    run = Path(shutil.copytree(trained.runs["spheremulti"], tmp_path_factory.mktemp("export") / "run"))
    calibrate(run, trained.data, device="cpu", workers=0, progress=False)
    return run


def test_hier_export_gives_the_runs_probabilities_on_real_images(run_cli, calibrated, tmp_path):
    out = tmp_path / "model.onnx"
    code, _, err = run_cli("export", calibrated, "-o", out)
    assert code == 0, err
    model, taxonomy, config = runs.load_trained(calibrated)
    temperature = json.loads((calibrated / runs.CALIBRATION).read_text())["temperature"]
    assert temperature != 1.0
    transform = image_transform(config)
    images = torch.stack([transform(load_image(p)) for p in PLANKTON])
    with torch.no_grad():
        expected = model.node_probabilities(model(images) / temperature)
    assert np.abs(probabilities_in_onnxruntime(out, images) - expected.numpy()).max() < 1e-4
    import onnx

    meta = {p.key: json.loads(p.value) for p in onnx.load(str(out)).metadata_props}
    assert meta["taxonomy"] == json.loads((calibrated / runs.TAXONOMY).read_text())
    assert meta["preprocessing"]["image_size"] == config["image_size"] == 32
    stored = json.loads((calibrated / runs.CALIBRATION).read_text())
    assert [e["threshold"] for e in meta["calibration"]["thresholds"]] == [e["threshold"] for e in stored["table"]]
    assert meta["calibration"]["guarantee"] == "marginal"
    assert meta["class_mix"] == {"prior": config["prior"], "long_tail": config["long_tail"], "proportions": None}
    code, _, err = run_cli("export", calibrated, "-o", out)
    assert code == 2 and "--force" in err
    code, _, err = run_cli("export", calibrated, "-o", calibrated / runs.WEIGHTS.replace(".safetensors", ".onnx"),
                           "--format", "openvino")
    assert code == 2 and ".xml" in err


def test_the_reader_in_the_docs_answers_as_hier_predict(run_cli, calibrated, tmp_path):
    out = tmp_path / "model.onnx"
    assert run_cli("export", calibrated, "-o", out)[0] == 0
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "export.md").read_text(), re.S)
    reader: dict = {}
    exec(blocks[0], reader)  # the page's own code
    session, meta = reader["load"](out)
    answers = reader["answer"](session, meta, PLANKTON, confidence=0.8)
    csv = tmp_path / "p.csv"
    code, _, err = run_cli("predict", calibrated, *PLANKTON, "--confidence", "0.8", "-o", csv)
    assert code == 0, err
    hier_rows = [line.split(",") for line in csv.read_text().splitlines()[1:]]
    agree = sum(node == row[1] for (node, _, _), row in zip(answers, hier_rows))
    assert agree >= len(PLANKTON) - 1  # Pillow's resampling is not torchvision's: near a threshold one may differ
    assert max(abs(p - float(row[4])) for (node, _, p), row in zip(answers, hier_rows) if node == row[1]) < 0.02


def test_openvino_export_writes_the_model_and_its_weights(run_cli, calibrated, tmp_path):
    ov = pytest.importorskip("openvino", reason="openvino is the extra hier[openvino]")
    out = tmp_path / "model.xml"
    code, _, err = run_cli("export", calibrated, "-o", out)
    assert code == 0, err
    assert out.with_suffix(".bin").is_file()
    model, _, config = runs.load_trained(calibrated)
    temperature = json.loads((calibrated / runs.CALIBRATION).read_text())["temperature"]
    images = torch.stack([image_transform(config)(load_image(p)) for p in PLANKTON[:5]])
    loaded = ov.Core().read_model(out)
    assert json.loads(loaded.get_rt_info(["hier", "decode_rule"]).astype(str)) == "deepest"
    compiled = ov.Core().compile_model(loaded, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    with torch.no_grad():
        expected = model.node_probabilities(model(images) / temperature)
    assert np.abs(compiled(images.numpy())[0] - expected.numpy()).max() < 1e-4


def test_a_tta_run_is_refused_rather_than_exported_with_one_view(run_cli, calibrated, tmp_path):
    run = Path(shutil.copytree(calibrated, tmp_path / "run"))
    runs.write_config(run, {**runs.read_config(run), "tta": True})
    code, _, err = run_cli("export", run, "-o", tmp_path / "tta.onnx")
    assert code == 2 and "tta" in err and not (tmp_path / "tta.onnx").exists()


def test_the_class_mix_of_a_run_fitted_with_a_prior_file(tmp_path):
    from hier.infer.export import class_mix

    (tmp_path / "prior.json").write_text(json.dumps({"train_counts": {"a": 3}, "proportions": {"a": 0.25, "b": 0.75}}))
    config = {"prior": str(tmp_path / "mix.csv"), "long_tail": "logit_adjust"}
    assert class_mix(tmp_path, config) == {"prior": "file", "long_tail": "logit_adjust",
                                           "proportions": {"a": 0.25, "b": 0.75}}
    assert class_mix(tmp_path, {"prior": "uniform", "long_tail": "none"})["proportions"] is None
