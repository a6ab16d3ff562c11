"""Reconstruction datasets: synthesis from images, volume data ranges, masking and deterministic batches."""

import math

import pytest
import torch

from phaselab.mri.fft import fft2c
from phaselab.recon.data import (
    KspaceSlices,
    apply_column_masks,
    batch_indices,
    check_slices,
    concat_slices,
    slices_from_images,
    volume_max,
)


def test_slices_from_images():
    magnitude = torch.rand(3, 8, 6)
    phase = (torch.rand(3, 8, 6) * 2 - 1) * math.pi
    slices = slices_from_images(magnitude, phase, volume=[0, 0, 1])
    assert slices.kspace.dtype == torch.complex64 and slices.target.dtype == torch.float32
    torch.testing.assert_close(slices.kspace, fft2c(torch.polar(magnitude, phase)))
    assert torch.equal(slices.target, magnitude) and slices.volume.tolist() == [0, 0, 1]
    assert slices.num_slices == 3
    assert slices_from_images(magnitude, phase).volume.tolist() == [0, 1, 2]  # default: one per slice
    picked = slices.select([2, 0])
    assert torch.equal(picked.target, magnitude[[2, 0]]) and picked.volume.tolist() == [1, 0]


def test_check_slices_rejects_inconsistent_tensors():
    good = slices_from_images(torch.rand(2, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="kspace must be complex"):
        check_slices(good._replace(kspace=good.target))
    with pytest.raises(ValueError, match="target must be real"):
        check_slices(good._replace(target=good.target[:, :3]))
    with pytest.raises(ValueError, match="volume must be int64"):
        check_slices(good._replace(volume=torch.zeros(3, dtype=torch.int64)))


def test_volume_max_is_the_maximum_over_each_volume():
    target = torch.zeros(4, 2, 2)
    target[:, 0, 0] = torch.tensor([1.0, 3.0, 2.0, 5.0])
    slices = KspaceSlices(target.to(torch.complex64), target, torch.tensor([7, 7, 2, 7]))
    assert volume_max(slices).tolist() == [5.0, 5.0, 2.0, 5.0]


def test_concat_keeps_volumes_apart():
    a = slices_from_images(torch.rand(2, 4, 4), torch.zeros(2, 4, 4), volume=[0, 0])
    b = slices_from_images(torch.rand(1, 4, 4), torch.zeros(1, 4, 4), volume=[0])
    joined = concat_slices([a, b])
    assert joined.volume.tolist() == [0, 0, 1] and joined.num_slices == 3


def test_apply_column_masks_shared_and_per_sample():
    kspace = torch.randn(2, 3, 4, dtype=torch.complex64)
    kspace[0, 0, 1] = float("nan")
    shared = torch.tensor([True, False, True, False])
    out = apply_column_masks(kspace, shared)
    assert torch.equal(out[..., shared], kspace[..., shared]) and (out[..., ~shared] == 0).all()
    per_sample = torch.tensor([[True, False, False, False], [False, False, False, True]])
    out = apply_column_masks(kspace, per_sample)
    assert torch.equal(out[1, :, 3], kspace[1, :, 3]) and int((out != 0).sum()) == 6


def test_batch_indices_are_reproducible_epoch_permutations():
    n, b = 10, 4
    batches = [batch_indices(n, b, step, seed=3) for step in range(5)]  # 20 samples = 2 epochs
    assert all(torch.equal(x, batch_indices(n, b, s, seed=3)) for s, x in enumerate(batches))
    flat = torch.cat(batches)
    assert sorted(flat[:10].tolist()) == list(range(10)) and sorted(flat[10:].tolist()) == list(range(10))
    assert flat[:10].tolist() != flat[10:].tolist()  # a fresh permutation per epoch
    assert not torch.equal(torch.cat([batch_indices(n, b, s, seed=4) for s in range(5)]), flat)
    assert batch_indices(3, 5, 0, seed=0).shape == (5,)  # batches larger than the dataset wrap around
