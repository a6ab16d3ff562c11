"""A grid cell trains the model of ``recon.model``: PhaseGen's complex U-Net through the same trial as the
VarNet, with its own section's settings, scored with the study's MSE too; the choice is part of the key."""

from types import SimpleNamespace

import torch

from phaselab.config import load_config
from phaselab.data.phantoms import write_phantom_dataset
from phaselab.orchestration.sweep import sweep_key, trial_spec
from phaselab.orchestration.trial import TrialSpec, load_spec, run_trial, save_spec
from phaselab.recon.complex_unet import ComplexResUNet
from phaselab.tracking import Tracker


def test_a_trial_trains_and_tests_the_complex_unet(tmp_path):
    phantoms = [str(p) for p in write_phantom_dataset(tmp_path / "ph", patients=3, slices=2, size=32, seed=0)]
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "models", artifact_root=tmp_path / "art")
    parent_id = tracker.parent_run("models", "models")[0]
    spec = TrialSpec(
        cell={"source": "gt", "acceleration": 4, "num_acs": 4, "seed": 0},
        trial_key="unet",
        trial_dir=str(tmp_path / "trial"),
        train_shards=phantoms[:1],
        val_shards=phantoms[1:2],
        test_files=phantoms[2:],
        varnet={"cascades": 1, "chans": 4, "pools": 2},
        train={
            "lr": 1e-3,
            "batch_size": 2,
            "steps": 4,
            "eval_every": 2,
            "optimizer": "adamw",
            "lr_gamma": 0.9,
        },
        tracking_uri=tracker.uri,
        experiment=tracker.experiment_name,
        parent_run_id=parent_id,
        resolved_config="{}",
        model="complex_unet",
        complex_unet={"size": "small", "dropout": 0.1},
    )
    assert load_spec(save_spec(spec)) == spec  # the new fields travel to Ray workers as JSON
    record = run_trial(spec)
    assert {"test_ssim", "test_mse", "test_zf_mse"} <= set(record)
    best = torch.load(tmp_path / "trial" / "best_model.pt", weights_only=True)
    assert best["model"] == "complex_unet" and best["complex_unet"] == {"size": "small", "dropout": 0.1}
    ComplexResUNet().load_state_dict(best["state_dict"])  # the small network's weights
    params = tracker.client.get_run(record["run_id"]).data.params
    assert params["recon.model"] == "complex_unet" and params["complex_unet.size"] == "small"
    assert params["train.optimizer"] == "adamw" and not any(k.startswith("varnet.") for k in params)


def test_an_old_spec_trains_the_varnet_and_the_model_is_in_the_sweep_key(tmp_path):
    spec = load_config("tiny")
    old = {  # a spec.json written before recon.model existed
        "cell": {},
        "trial_key": "k",
        "trial_dir": str(tmp_path),
        "train_shards": [],
        "val_shards": [],
        "test_files": [],
        "varnet": {},
        "train": {},
        "tracking_uri": "",
        "experiment": "",
        "parent_run_id": "",
        "resolved_config": "",
    }
    assert TrialSpec(**old).model == "varnet"
    keys = {
        sweep_key(spec),
        sweep_key(load_config("tiny", ["recon.model=complex_unet"])),
        sweep_key(load_config("tiny", ["recon.model=complex_unet", "complex_unet.size=large"])),
    }
    assert len(keys) == 3


def test_the_sweep_passes_the_chosen_model_to_its_trials(tmp_path):
    config = load_config("tiny", ["recon.model=complex_unet", "complex_unet.dropout=0.4"])
    ctx = SimpleNamespace(
        config=config,
        shards={"gt": {0: {"recTrain": ["a.h5"], "recVal": ["b.h5"]}}},
        key="k",
        tracking_uri="sqlite://",
        parent_id="p",
        resolved="",
    )
    cell = {"source": "gt", "acceleration": 4, "num_acs": 4, "seed": 0}
    spec = trial_spec(ctx, cell, tmp_path, with_test=False)
    assert spec.model == "complex_unet" and spec.complex_unet == {"size": "small", "dropout": 0.4}
    assert spec.varnet == {"cascades": 1, "chans": 4, "pools": 2}  # kept, unused
    assert spec.train["optimizer"] == "adam" and spec.train["lr_gamma"] == 1.0
