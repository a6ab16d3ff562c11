"""Sweep overhead: wall time of a recon grid through Ray Tune + MLflow vs the trials' own training time.

Also runs the same trials one after another in this process (no Ray, no Tune) as the baseline, so the
figures are ratios measured side by side on one machine:

    python benchmarks/bench_sweep_overhead.py --out benchmarks/results/sweep_overhead_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from phaselab.config import load_config
from phaselab.orchestration.grid import grid_cells, run_recon_grid
from phaselab.orchestration.trial import load_spec, model_settings, training_lengths
from phaselab.recon.data import ShardSlices
from phaselab.recon.models import build_model_config
from phaselab.recon.train import TrainConfig, train_varnet
from phaselab.tracking import Tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    overrides = [
        "data.patients=12",
        "data.slices=4",
        "data.size=64",
        "grid.sources=[gt, zero, smooth]",
        "grid.accelerations=[4, 6]",
        "grid.num_acs=[4]",
        "grid.seeds=[0]",
        f"train.steps={args.steps}",
        f"train.eval_every={args.steps // 3}",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config("demo", [*overrides, f"output_dir={tmp}"])
        result = run_recon_grid(config, log_fn=lambda _: None)
        cells = grid_cells(config)
        timeline = Tracker(result.tracking_uri, config.tracking.experiment).load_json_artifact(
            result.parent_run_id, "timeline/timeline.json"
        )

        # Baseline: the same trainings, one after another in this process (no Ray, no Tune, no MLflow),
        # exactly as a trial builds them, with the same thread count.
        torch.set_num_threads(config.resources.torch_threads)
        serial = 0.0
        for path in sorted(Path(tmp, "trials").glob("*/spec.json")):
            spec = load_spec(path)
            train = ShardSlices(spec.train_shards)
            train_cfg = TrainConfig(
                **training_lengths(spec.train, train.num_slices),
                acceleration=spec.cell["acceleration"],
                num_acs=spec.cell["num_acs"],
                seed=spec.cell["seed"],
                mask=spec.mask,
            )
            start = time.perf_counter()
            train_varnet(
                train,
                ShardSlices(spec.val_shards),
                build_model_config(spec.model, model_settings(spec)),
                train_cfg,
            )
            serial += time.perf_counter() - start

    report = {
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (no GPU)",
        "trials": len(cells),
        "steps_per_trial": args.steps,
        "sweep_wall_s": round(result.seconds, 2),
        "sum_trial_train_s": round(result.trial_seconds, 2),
        "serial_in_process_s": round(serial, 2),
        "ratio_wall_to_trial_time": round(result.seconds / result.trial_seconds, 3),
        "ratio_wall_to_serial_baseline": round(result.seconds / serial, 3),
        "seconds_before_first_trial": round(timeline["seconds_before_first_trial"], 1),
        "slot_utilisation_while_trials_run": round(timeline["slot_utilisation_while_trials_run"], 3),
        "note": "sweep wall includes Ray start, phantom build, synthesis of 3 sources (in turn on CPUs, "
        "resources.pipeline=auto), phase metrics, MLflow logging, test evaluation and figures; "
        "trials run 2 at a time on 2 cores; the baseline trains the same specs one after another "
        "in one process",
    }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
