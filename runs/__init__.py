"""The run: its directory (layout), its config, the network it holds (model), loading it, choosing it, built-in runs.

``hier fit`` writes a run; every other command reads one. What a command does with a run goes
through here: ``check_run_dir`` -> ``load_trained`` (the network, the taxonomy, the config), or
``choose_run`` for ``[RUN] IMAGES...``. The calibration a run stores is in ``hier.runs.calibration``.
"""

from .builtin import BUILTIN_RUNS, builtin_run, is_builtin
from .choose import RUNS_ROOT, RunChoice, choose_run, is_run_dir, list_runs, newest_run, resolve_run
from .layout import (
    BEST,
    CALIBRATION,
    CONFIG,
    EVALUATION,
    LAST,
    METRICS,
    RUN_FILES,
    SPLIT,
    TAXONOMY,
    WEIGHTS,
    check_outside,
    check_run_dir,
    export_cache,
    load_checkpoint,
    prepare_run_dir,
    read_config,
    read_metrics,
    read_split,
    run_files,
    save_checkpoint,
    save_weights,
    write_config,
    write_metrics,
)
from .load import load_trained

__all__ = [
    "BUILTIN_RUNS", "builtin_run", "is_builtin", "RUNS_ROOT", "RunChoice", "choose_run", "is_run_dir", "list_runs",
    "newest_run", "resolve_run", "BEST", "CALIBRATION", "CONFIG", "EVALUATION", "LAST", "METRICS", "RUN_FILES",
    "SPLIT", "TAXONOMY", "WEIGHTS", "check_outside", "check_run_dir", "export_cache", "load_checkpoint", "prepare_run_dir",
    "read_config", "read_metrics", "run_files", "save_checkpoint", "save_weights", "write_config", "write_metrics",
    "load_trained",
]
