"""VarNet training loop: it learns, reports resumable checkpoints, is deterministic across resume and DDP."""

import os

import pytest
import torch
import torch.multiprocessing as mp

from phaselab.recon.data import apply_column_masks, slices_from_images, volume_max
from phaselab.recon.losses import SSIMLoss
from phaselab.recon.train import (
    TrainConfig,
    VarNetConfig,
    train_varnet,
    training_masks,
    validation_masks,
)
from phaselab.recon.varnet import VarNet
from tests.recon.conftest import ellipse_images

TINY = VarNetConfig(cascades=1, chans=4, pools=2)


def _tiny_data(count=6, size=24, seed=1):
    magnitude, phase = ellipse_images(count, size, seed)
    return slices_from_images(magnitude, phase, volume=[i // 2 for i in range(count)])


def _quick_cfg(**kw):
    # one thread: on a busy 2-core machine two OpenMP threads per process slowed training 40x
    base = dict(
        lr=1e-3, batch_size=2, steps=8, eval_every=4, acceleration=4, num_acs=4, device="cpu", num_threads=1
    )
    return TrainConfig(**{**base, **kw})


def test_overfit_beats_zero_filled(overfit_run):
    run, slices, cfg = overfit_run.result, overfit_run.slices, overfit_run.train_cfg
    masks = validation_masks(slices.kspace.shape[-1], slices.num_slices, cfg)
    masked = apply_column_masks(slices.kspace, masks)
    data_range = volume_max(slices)
    zf_loss = float(SSIMLoss()(VarNet.image(masked), slices.target, data_range))
    with torch.no_grad():
        model_loss = float(SSIMLoss()(VarNet.image(run.model(masked, masks)), slices.target, data_range))
    seconds = overfit_run.seconds
    print(f"\noverfit: {cfg.steps} steps in {seconds:.1f}s, SSIM loss {model_loss:.3f} vs zf {zf_loss:.3f}")
    assert model_loss < 0.5 * zf_loss and zf_loss - model_loss > 0.15
    history = run.history
    assert [h["step"] for h in history] == [50.0, 100.0, 150.0, 200.0]
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    assert run.best_val_ssim == max(h["val_ssim"] for h in history) == pytest.approx(1 - model_loss, abs=1e-4)


def test_best_state_is_the_best_validated_model(overfit_run):
    run = overfit_run.result
    assert set(run.best_state) == set(run.model.state_dict())
    if run.history[-1]["val_ssim"] == run.best_val_ssim:
        for key, value in run.model.state_dict().items():
            assert torch.equal(run.best_state[key], value)


def test_reports_checkpoints_every_eval_and_at_the_end(tmp_path):
    reports = []
    result = train_varnet(
        _tiny_data(),
        _tiny_data(count=2, seed=2),
        TINY,
        _quick_cfg(steps=10),
        report=lambda m, c: reports.append((m, c)),
    )
    assert [m["step"] for m, _ in reports] == [4.0, 8.0, 10.0] and [m["epoch"] for m, _ in reports] == [
        1.0,
        2.0,
        3.0,
    ]
    metrics, checkpoint = reports[-1]
    assert set(metrics) == {"step", "epoch", "train_loss", "val_ssim", "best_val_ssim"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert checkpoint["step"] == 10 and checkpoint["history"] == result.history
    assert checkpoint["model_config"] == {"cascades": 1, "chans": 4, "pools": 2}
    assert checkpoint["train_config"]["steps"] == 10
    assert checkpoint["best_val_ssim"] == max(m["val_ssim"] for m, _ in reports)
    for key, value in result.model.state_dict().items():
        assert torch.equal(checkpoint["model"][key], value.cpu())
    # reported checkpoints are snapshots, and torch.save / weights_only load handles them
    assert not torch.equal(
        reports[0][1]["model"]["cascades.0.regularizer.unet.head.bias"],
        checkpoint["model"]["cascades.0.regularizer.unet.head.bias"],
    )
    torch.save(checkpoint, tmp_path / "ck.pt")
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["step"] == 10


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    train, val = _tiny_data(), _tiny_data(count=2, seed=2)
    checkpoints = []
    straight = train_varnet(train, val, TINY, _quick_cfg(steps=8), report=lambda m, c: checkpoints.append(c))
    torch.save(checkpoints[0], tmp_path / "step4.pt")
    halfway = torch.load(tmp_path / "step4.pt", weights_only=True)
    assert halfway["step"] == 4
    resumed = train_varnet(train, val, TINY, _quick_cfg(steps=8), resume=halfway)
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert resumed.history == straight.history and resumed.best_val_ssim == straight.best_val_ssim
    # a different seed really changes the run (so the equality above is not vacuous)
    other = train_varnet(train, val, TINY, _quick_cfg(steps=4, seed=1))
    assert not torch.equal(
        other.model.state_dict()["cascades.0.regularizer.unet.head.bias"],
        halfway["model"]["cascades.0.regularizer.unet.head.bias"],
    )


def test_masks_are_seeded():
    cfg = _quick_cfg(batch_size=8, acceleration=4, num_acs=4)
    first = training_masks(32, cfg, step=0)
    assert first.shape == (8, 32) and torch.equal(first, training_masks(32, cfg, step=0))
    assert len({tuple(row.tolist()) for row in first}) > 1  # random offsets per sample
    assert not torch.equal(first, training_masks(32, cfg, step=1))
    assert (first[:, 14:18]).all()  # the centre block of num_acs columns
    val = validation_masks(32, 5, cfg)
    assert torch.equal(val, validation_masks(32, 5, _quick_cfg(seed=9)))  # independent of the training seed
    assert not torch.equal(val, validation_masks(32, 5, _quick_cfg(val_seed=1)))


def test_no_validation_keeps_the_final_model_and_restores_threads():
    threads = torch.get_num_threads()
    inside = []
    cfg = _quick_cfg(steps=2, eval_every=1, num_threads=3 - min(threads, 2))  # differs from the current count
    result = train_varnet(
        _tiny_data(), None, TINY, cfg, report=lambda m, c: inside.append(torch.get_num_threads())
    )
    assert inside == [cfg.num_threads] * 2 and torch.get_num_threads() == threads
    assert result.best_val_ssim is None and "val_ssim" not in result.history[-1]
    for key, value in result.model.state_dict().items():
        assert torch.equal(result.best_state[key], value)
    with pytest.raises(ValueError, match="eval_every"):
        train_varnet(_tiny_data(), None, TINY, _quick_cfg(eval_every=0))


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    try:
        reports = []
        result = train_varnet(
            _tiny_data(),
            _tiny_data(count=3, seed=2),
            TINY,
            _quick_cfg(batch_size=4, steps=4, eval_every=2),
            report=lambda m, c: reports.append((m, c)),
        )
        torch.save(
            {
                "state": result.model.state_dict(),
                "metrics": [m for m, _ in reports],
                "has_checkpoint": [c is not None for _, c in reports],
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_on_two_workers_matches_one_process(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = train_varnet(
        _tiny_data(), _tiny_data(count=3, seed=2), TINY, _quick_cfg(batch_size=4, steps=4, eval_every=2)
    )
    assert ranks[0]["has_checkpoint"] == [True, True] and ranks[1]["has_checkpoint"] == [False, False]
    assert ranks[0]["metrics"] == ranks[1]["metrics"]  # all-reduced
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][key], value, atol=1e-5, rtol=1e-4)
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key])
    for got, want in zip(ranks[0]["metrics"], single.history, strict=True):
        assert got.keys() == want.keys()
        for k in got:
            assert got[k] == pytest.approx(want[k], rel=1e-4, abs=1e-5)


def test_global_phase_augmentation_is_seeded_and_uniform():
    import math

    from phaselab.recon.train import global_phases

    a, b = global_phases(0, 5, 4096), global_phases(0, 5, 4096)
    assert torch.equal(a, b) and not torch.equal(a, global_phases(0, 6, 4096))
    assert a.min() >= -math.pi and a.max() <= math.pi
    assert abs(float(torch.exp(1j * a.double()).mean().abs())) < 0.05  # no preferred offset
    assert torch.equal(global_phases(0, 5, 2), a[:2])  # a rank's shard is a slice of the global draw
