"""Where ``hier report``'s images and answers come from: a ``hier predict`` output, or a labelled dataset that the
run scores now (its test split by default), answered by the same rule as ``hier predict``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hier import runs
from hier.backbones.device import pick_device
from hier.core.errors import InputError
from hier.core.files import check_output_file
from hier.core.progress import Progress
from hier.infer.answer import answer_batch, answer_rule, decode_rule, preference
from hier.infer.report import Record, RunInfo, labelled_records, read_run, records_from_predictions
from hier.infer.scoring import dataset_of, held_out_split, score_batches, unreadable_reason
from hier.taxo import Taxonomy
from hier.tree import TreeTensors


@dataclass
class ReportInput:
    taxonomy: Taxonomy
    info: RunInfo
    records: list[Record]
    what: str  # a line naming the data, for the header
    read: list[Path]  # the files read besides the run's and the images (the output may not be one of them)


def report_input(run_dir, *, dataset=None, predictions=None, out: Path, force: bool = False, base=None,
                 split: str | None = None, confidence: float = 0.9, calibrated: bool = True, device: str = "auto",
                 batch_size: int | None = None, workers: int | None = None, console=None) -> ReportInput:
    """The run's records, from ``predictions`` (unlabelled) or from ``dataset`` scored now (labelled; without
    either, the dataset the run was trained on); ``out`` is checked before any work."""
    run_dir = runs.check_run_dir(run_dir)
    if predictions is not None:
        if dataset is not None:
            raise InputError("give either DATASET (labelled) or --predictions (unlabelled), not both", path=dataset)
        check_output_file(out, force=force, inputs=[*runs.run_files(run_dir), predictions])
        taxonomy, info = read_run(run_dir)
        records = records_from_predictions(predictions, taxonomy, base=base)
        return ReportInput(taxonomy, info, records, f"{predictions} (hier predict, {len(records)} images)",
                           [Path(predictions)])
    dataset = dataset_of(run_dir, dataset, "report")
    check_output_file(out, force=force, inputs=[*runs.run_files(run_dir), dataset])
    taxonomy, info = read_run(run_dir)
    samples, split_name, _ = held_out_split(run_dir, dataset, split, "test")
    records = labelled_records(samples, taxonomy, lambda paths: _answers(
        run_dir, paths, confidence, calibrated=calibrated, device=device, batch_size=batch_size, workers=workers,
        console=console))
    return ReportInput(taxonomy, info, records, f"{dataset} ({split_name}, {len(samples)} images)", [Path(dataset)])


def _answers(run_dir: Path, paths: list[Path], confidence: float, *, calibrated: bool, device: str,
             batch_size: int | None, workers: int | None, console) -> list:
    """Per image, as ``hier predict`` answers it: (node, its probability, the most probable leaf), or why it
    could not be read."""
    rule = answer_rule(run_dir, confidence, use_calibration=calibrated)
    device = pick_device(device)
    model, taxonomy, config = runs.load_trained(run_dir, device)
    tree = TreeTensors(taxonomy).to(device)
    rank = preference(tree, decode_rule(config))
    answers = []
    with Progress(console=console) as bar:
        for span, readable, scores in score_batches(model, paths, config, device, batch_size=batch_size,
                                                    workers=workers, progress=bar, what="report",
                                                    cache_dir=runs.export_cache(run_dir)):
            got = answer_batch(model, scores, readable, rule, tree, 1, rank) if scores is not None else {}
            for i in span:
                if i in got:
                    node, p, top = got[i]
                    answers.append((node, p, top[0][0] if top else None))
                else:
                    answers.append(unreadable_reason(paths[i]))
    return answers
