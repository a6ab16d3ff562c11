"""Training on slices read lazily from fastMRI files (ShardSlices, what a trial does) is bit-identical to
training on the same files stacked in memory (load_slices, what a trial did before): same batches, same
data ranges, same metrics, same weights."""

import torch

from phaselab.data.fastmri_io import write_volume
from phaselab.recon.data import ShardSlices, batch_indices, load_slices, slices_from_images, volume_max
from phaselab.recon.train import TrainConfig, VarNetConfig, train_varnet
from tests.recon.conftest import ellipse_images


def _files(folder, counts, seed):
    magnitude, phase = ellipse_images(sum(counts), 24, seed)
    slices = slices_from_images(magnitude, phase)
    paths, start = [], 0
    for i, count in enumerate(counts):
        part = slice(start, start + count)
        path = folder / f"vol{seed}_{i}.h5"
        paths.append(str(write_volume(path, slices.kspace[part], patient_id=f"p{i}", target=magnitude[part])))
        start += count
    return paths


def test_lazy_batches_and_ranges_equal_the_stacked_ones(tmp_path):
    paths = _files(tmp_path, (3, 2, 4), seed=0)
    stacked, lazy = load_slices(paths), ShardSlices(paths)
    assert lazy.num_slices == stacked.num_slices == 9 and lazy.width == stacked.width == 24
    assert torch.equal(lazy.volume, stacked.volume)
    assert torch.equal(volume_max(lazy), volume_max(stacked))
    for step in range(6):
        index = batch_indices(lazy.num_slices, 4, step, seed=3)
        a, b = stacked.select(index), lazy.select(index)
        assert a.kspace.dtype == b.kspace.dtype and a.target.dtype == b.target.dtype
        assert torch.equal(a.kspace, b.kspace) and torch.equal(a.target, b.target)
        assert torch.equal(a.volume, b.volume)
    assert lazy.select([]).kspace.shape == (0, 24, 24)


def test_training_on_lazy_files_is_bit_identical_to_stacked_tensors(tmp_path):
    train_paths = _files(tmp_path, (3, 2, 3), seed=1)
    val_paths = _files(tmp_path, (2, 3), seed=2)
    cfg = TrainConfig(
        lr=1e-3, batch_size=3, steps=6, eval_every=3, acceleration=4, num_acs=4, device="cpu",
        num_threads=1, random_global_phase=True, val_batch_size=2, lr_gamma=0.9,
    )  # fmt: skip
    model = VarNetConfig(cascades=1, chans=4, pools=2)
    old = train_varnet(load_slices(train_paths), load_slices(val_paths), model, cfg)
    new = train_varnet(ShardSlices(train_paths), ShardSlices(val_paths), model, cfg)
    assert old.history == new.history and len(new.history) == 2
    assert old.best_val_ssim == new.best_val_ssim
    for key, value in old.model.state_dict().items():
        assert torch.equal(value, new.model.state_dict()[key]), key
    for key, value in old.best_state.items():
        assert torch.equal(value, new.best_state[key]), key
