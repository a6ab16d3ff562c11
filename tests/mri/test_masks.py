"""Cartesian masks: bit-for-bit agreement with fastMRI, the studies' equispaced mask, the dispatcher."""

import numpy as np
import pytest
import torch
from fastmri.data.subsample import EquispacedMaskFractionFunc, RandomMaskFunc

from phaselab.mri.masks import (
    Mask,
    apply_mask,
    equispaced_fraction_mask,
    equispaced_mask,
    mask_from_name,
    random_mask,
)

# fastMRI real-view shapes (..., H, W, 2); ours is the complex shape without the trailing 2
FASTMRI_SHAPES = [(1, 640, 368, 2), (1, 320, 320, 2), (1, 256, 256, 2), (1, 64, 65, 2), (1, 16, 37, 2)]
FRACTION_PAIRS = [(0.08, 4), (0.04, 8), (0.16, 2), (0.06, 6), (0.1, 3)]
SEEDS = range(200)


def _assert_same_as_fastmri(ours: Mask, fm_mask: torch.Tensor, fm_num_low: int, shape) -> None:
    assert fm_mask.shape == (1, 1, shape[-2], 1)
    assert torch.equal(ours.columns, fm_mask.flatten().bool())
    assert ours.num_acs == fm_num_low


@pytest.mark.parametrize("shape", FASTMRI_SHAPES)
@pytest.mark.parametrize(("center_fraction", "acceleration"), FRACTION_PAIRS)
def test_random_mask_matches_fastmri(shape, center_fraction, acceleration):
    fm = RandomMaskFunc([center_fraction], [acceleration])
    for seed in SEEDS:
        fm_mask, fm_num_low = fm(shape, seed=seed)
        ours = random_mask(shape[:-1], center_fraction, acceleration, seed)
        _assert_same_as_fastmri(ours, fm_mask, fm_num_low, shape)


@pytest.mark.parametrize("shape", FASTMRI_SHAPES)
@pytest.mark.parametrize(("center_fraction", "acceleration"), FRACTION_PAIRS)
def test_equispaced_fraction_mask_matches_fastmri(shape, center_fraction, acceleration):
    fm = EquispacedMaskFractionFunc([center_fraction], [acceleration])
    for seed in SEEDS:
        fm_mask, fm_num_low = fm(shape, seed=seed)
        ours = equispaced_fraction_mask(shape[:-1], center_fraction, acceleration, seed)
        _assert_same_as_fastmri(ours, fm_mask, fm_num_low, shape)


@pytest.mark.parametrize("seed", [(1, 2), (7, 0, 3), (123456,)])
def test_tuple_seeds_match_fastmri(seed):
    shape = (1, 320, 368, 2)
    fm_mask, _ = RandomMaskFunc([0.08], [4])(shape, seed=seed)
    assert torch.equal(random_mask(shape[:-1], 0.08, 4, seed).columns, fm_mask.flatten().bool())
    fm_mask, _ = EquispacedMaskFractionFunc([0.08], [4])(shape, seed=seed)
    assert torch.equal(equispaced_fraction_mask(shape[:-1], 0.08, 4, seed).columns, fm_mask.flatten().bool())


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_equispaced_fraction_given_offset_matches_fastmri(offset):
    shape = (1, 640, 368, 2)
    fm_mask, _ = EquispacedMaskFractionFunc([0.08], [4])(shape, offset=offset, seed=5)
    ours = equispaced_fraction_mask(shape[:-1], 0.08, 4, seed=5, offset=offset)
    assert torch.equal(ours.columns, fm_mask.flatten().bool())


def test_fraction_masks_report_their_acceleration():
    mask = random_mask((640, 368), 0.08, 4, seed=0)
    assert mask.acceleration == 4.0
    assert mask.num_acs == round(368 * 0.08)
    assert mask.effective_acceleration == pytest.approx(368 / int(mask.columns.sum()))
    mask = equispaced_fraction_mask(368, 0.08, 4, seed=0)
    # the stretched spacing targets W / acceleration columns in total
    assert abs(int(mask.columns.sum()) - 368 / 4) <= 2


def test_random_masks_are_deterministic_per_seed_and_vary_across_seeds():
    first = random_mask((320, 320), 0.08, 4, seed=11)
    again = random_mask((320, 320), 0.08, 4, seed=11)
    other = random_mask((320, 320), 0.08, 4, seed=12)
    assert torch.equal(first.columns, again.columns)
    assert not torch.equal(first.columns, other.columns)


@pytest.mark.parametrize("width", [256, 320, 368, 65, 37])
@pytest.mark.parametrize("acceleration", [2, 3, 4, 6])
@pytest.mark.parametrize("num_acs", [16, 26, 31])
def test_equispaced_mask_structure(width, acceleration, num_acs):
    for offset in range(acceleration):
        mask = equispaced_mask(width, acceleration, num_acs, offset=offset)
        cols = mask.columns.numpy()
        start = (width - num_acs + 1) // 2
        centre = np.zeros(width, dtype=bool)
        centre[start : start + num_acs] = True
        assert centre.sum() == num_acs and centre[width // 2]
        assert cols[centre].all()
        outside = np.flatnonzero(~centre)
        expected = (outside - offset) % acceleration == 0
        np.testing.assert_array_equal(cols[outside], expected)
        assert mask.num_acs == num_acs
        assert mask.acceleration == acceleration
        assert mask.effective_acceleration == pytest.approx(width / cols.sum())
        assert mask.effective_acceleration <= acceleration
        assert mask.columns.dtype == torch.bool and mask.columns.shape == (width,)


def test_equispaced_mask_known_example():
    mask = equispaced_mask(10, 3, 2, offset=1)
    # centre block starts at (10 - 2 + 1)//2 = 4: columns 4, 5; outer columns 1, 4, 7
    assert mask.columns.nonzero().flatten().tolist() == [1, 4, 5, 7]
    assert mask.effective_acceleration == pytest.approx(10 / 4)


def test_equispaced_mask_seeded_offset_is_deterministic():
    offsets = set()
    for seed in range(20):
        a = equispaced_mask(320, 4, 26, seed=seed)
        b = equispaced_mask(320, 4, 26, seed=seed)
        assert torch.equal(a.columns, b.columns)
        expected_offset = int(np.random.default_rng(seed).integers(0, 4))
        assert torch.equal(a.columns, equispaced_mask(320, 4, 26, offset=expected_offset).columns)
        offsets.add(expected_offset)
    assert len(offsets) > 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 64, "acceleration": 0, "num_acs": 8}, "acceleration"),
        ({"width": 64, "acceleration": 2.5, "num_acs": 8}, "acceleration"),
        ({"width": 64, "acceleration": 4, "num_acs": 65}, "num_acs"),
        ({"width": 64, "acceleration": 4, "num_acs": -1}, "num_acs"),
        ({"width": 64, "acceleration": 4, "num_acs": 8, "offset": 4}, "offset"),
        ({"width": 0, "acceleration": 4, "num_acs": 0}, "width"),
    ],
)
def test_equispaced_mask_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        equispaced_mask(**kwargs)


@pytest.mark.parametrize("make", [random_mask, equispaced_fraction_mask])
def test_fraction_masks_reject_bad_arguments(make):
    with pytest.raises(ValueError, match="center_fraction"):
        make((64, 64), 1.2, 4, seed=0)
    with pytest.raises(ValueError, match="center_fraction"):
        make((64, 64), -0.1, 4, seed=0)
    with pytest.raises(ValueError, match="acceleration"):
        make((64, 64), 0.08, 0, seed=0)
    with pytest.raises(ValueError, match="real view"):
        make((1, 64, 64, 2), 0.08, 4, seed=0)


def test_equispaced_fraction_needs_room_for_outer_columns():
    with pytest.raises(ValueError, match="center_fraction \\* acceleration"):
        equispaced_fraction_mask(64, 0.5, 4, seed=0)


def test_mask_from_name_dispatches():
    assert torch.equal(
        mask_from_name("equispaced", 320, 4, num_acs=26, seed=3).columns,
        equispaced_mask(320, 4, 26, seed=3).columns,
    )
    assert torch.equal(
        mask_from_name("random", (640, 368), 4, center_fraction=0.08, seed=3).columns,
        random_mask((640, 368), 0.08, 4, seed=3).columns,
    )
    assert torch.equal(
        mask_from_name("equispaced_fraction", (640, 368), 4, center_fraction=0.08, seed=3).columns,
        equispaced_fraction_mask((640, 368), 0.08, 4, seed=3).columns,
    )


def test_mask_from_name_rejects_unknown_and_mismatched_arguments():
    with pytest.raises(ValueError, match="unknown mask kind 'gaussian'.*equispaced"):
        mask_from_name("gaussian", 320, 4, num_acs=26)
    with pytest.raises(ValueError, match="num_acs"):
        mask_from_name("equispaced", 320, 4, center_fraction=0.08)
    with pytest.raises(ValueError, match="center_fraction"):
        mask_from_name("random", 320, 4, num_acs=26)
    with pytest.raises(ValueError, match="center_fraction"):
        mask_from_name("equispaced_fraction", 320, 4)


def test_apply_mask_zeroes_unsampled_columns():
    rng = np.random.default_rng(0)
    kspace = torch.from_numpy(rng.standard_normal((2, 5, 12)) + 1j * rng.standard_normal((2, 5, 12)))
    kspace = kspace.to(torch.complex64)
    kspace[..., 0] = complex(float("nan"), 0)  # unsampled below: must come out as exact zeros
    mask = equispaced_mask(12, 3, 2, offset=1)
    masked = apply_mask(kspace, mask)
    assert masked.dtype == kspace.dtype and masked.shape == kspace.shape
    keep = mask.columns
    torch.testing.assert_close(masked[..., keep], kspace[..., keep])
    assert torch.count_nonzero(masked[..., ~keep]) == 0
    torch.testing.assert_close(apply_mask(kspace, mask.columns), masked, equal_nan=True)


def test_apply_mask_rejects_width_mismatch():
    with pytest.raises(ValueError, match="width 12"):
        apply_mask(torch.zeros(4, 12, dtype=torch.complex64), equispaced_mask(10, 2, 2, offset=0))


def test_volume_masks_are_fastmris_validation_masks_seeded_by_the_file_name():
    from fastmri.data.subsample import RandomMaskFunc

    from phaselab.mri.masks import volume_mask, volume_seed

    names = ["file1000001.h5", "file1000002.h5", "phantom_knee_p003.h5"]
    for name in names:
        ours = volume_mask("random", 368, 4, name, center_fraction=0.08)
        theirs = RandomMaskFunc([0.08], [4])((1, 640, 368, 2), seed=tuple(map(ord, name)))[0]
        assert torch.equal(ours.columns, theirs.squeeze().bool())
        assert volume_seed(name) == tuple(map(ord, name))
    equispaced = [volume_mask("equispaced", 64, 6, name, num_acs=8).columns for name in names]
    assert len({tuple(m.tolist()) for m in equispaced}) > 1  # not one offset for every volume
    again = volume_mask("equispaced", 64, 6, names[0], num_acs=8).columns
    assert torch.equal(again, equispaced[0])  # fixed per volume
