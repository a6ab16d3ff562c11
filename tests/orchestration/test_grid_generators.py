"""A grid with learned generators, through the same recipe code path as the paper presets (scaled down by
the tiny preset): trained with Ray Train, checked for realism, refused or allowed, one draw per seed."""

import json
from pathlib import Path

import pytest

from phaselab.config import load_config
from phaselab.orchestration.grid import run_recon_grid
from phaselab.tracking import Tracker

pytestmark = pytest.mark.ray


@pytest.mark.slow  # 30-80 s on 2 cores: out of CI (python -m pytest -m slow)
def test_tiny_grid_trains_sbdm_and_gan_on_their_recipes(ray_session, tmp_path):
    overrides = [
        f"output_dir={tmp_path}",
        "grid.sources=[sbdm, gan]",
        "grid.seeds=[0, 1]",
        "train.steps=2",
        "train.eval_every=2",
        # two-epoch tiny networks do not generate realistic phase: the grid would refuse them
        "generators.sbdm.allow_unrealistic=true",
        "generators.gan.allow_unrealistic=true",
    ]
    config = load_config("tiny", overrides)
    lines = []
    result = run_recon_grid(config, log_fn=lines.append)
    assert len(result.rows) == 4
    assert sum("WARNING !!! generator sbdm: UNREALISTIC" in line for line in lines) == 1
    assert any("using generator gan although it is unrealistic" in line for line in lines)

    tracker = Tracker(result.tracking_uri, config.tracking.experiment)
    generators = {
        run.data.tags["phaselab.generator"]: run for run in tracker.find_runs({"phaselab.role": "generator"})
    }
    assert set(generators) == {"sbdm", "gan"}
    sbdm = generators["sbdm"]
    # the recipe's settings, scaled by the tiny preset: 2 epochs of 4 genTrain slices at batch 2
    assert sbdm.data.params["train.epochs"] == "2" and sbdm.data.params["train.warmup_steps"] == "2"
    assert sbdm.data.params["model.preconditioning"] == "edm"
    assert [m.step for m in tracker.client.get_metric_history(sbdm.info.run_id, "val_loss")] == [2, 4]
    assert sbdm.data.metrics["realism_pass"] == 0.0 and "realism_feature_fd" in sbdm.data.metrics
    parent = tracker.client.get_run(result.parent_run_id)
    assert parent.data.tags["phaselab.realism.gan"] == "UNREALISTIC"

    specs = {}
    for path in (tmp_path / "trials").glob("*/spec.json"):
        spec = json.loads(path.read_text())
        specs[spec["cell"]["source"], spec["cell"]["seed"]] = {
            Path(p).parent.name for p in spec["train_shards"]
        }
    assert specs["sbdm", 0] != specs["sbdm", 1] and specs["gan", 0] != specs["gan", 1]  # a draw per seed
    table = tracker.load_json_artifact(result.parent_run_id, "phase_metrics/table.json")
    assert {row["source"] for row in table} == {"sbdm", "gan"}
