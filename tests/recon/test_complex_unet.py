"""PhaseGen's complex U-Net: the study's sizes, data consistency at every resolution, the recon interface,
training through the shared loop (it overfits, resumes exactly, uses AdamW with per-epoch decay)."""

import time

import pytest
import torch

from phaselab.mri.fft import fft2c, ifft2c
from phaselab.mri.geometry import fourier_resize
from phaselab.mri.masks import equispaced_mask
from phaselab.nn.complex_layers import count_parameters, to_complex, to_split
from phaselab.recon.complex_unet import SIZES, ComplexResUNet, pool_columns, replace_acquired
from phaselab.recon.data import apply_column_masks, slices_from_images, volume_max
from phaselab.recon.evaluate import evaluate_reconstruction
from phaselab.recon.losses import SSIMLoss
from phaselab.recon.models import ComplexUNetConfig, build_model
from phaselab.recon.train import TrainConfig, learning_rate, make_optimizer, train_varnet, validation_masks
from phaselab.recon.varnet import VarNet
from tests.complex_helpers import one_torch_thread  # noqa: F401  (the fixture)
from tests.recon.conftest import ellipse_images

TINY = ComplexUNetConfig(features=[2, 4], dropout=0.2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _masked(batch=2, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    kspace = torch.complex(torch.randn(batch, h, w, generator=g), torch.randn(batch, h, w, generator=g))
    columns = torch.stack([equispaced_mask(w, 4, 4, offset=i % 4).columns for i in range(batch)])
    return kspace, columns


def test_the_studys_two_sizes():
    # torch's count, one per complex weight, is the study's: its public config (4, 8, 16, 32) gives 209k
    small, large = (count_parameters(ComplexResUNet(SIZES[s])) for s in ("small", "large"))
    assert small["total"] == 210_801 and abs(small["total"] / 209e3 - 1) < 0.01
    assert large["total"] == 3_341_889 and abs(large["total"] / 3.3e6 - 1) < 0.02
    # as real numbers (real and imaginary parts) each is about twice that
    assert small["real_equivalent"] == 420_138 and large["real_equivalent"] == 6_677_922
    assert build_model("complex_unet", {"size": "large"}).encoder[0][0].conv1.weight.shape[0] == 16


def test_pooled_columns_are_those_the_acquisition_determines():
    for width in (32, 30, 21):
        full, _ = _masked(batch=1, h=12, w=width, seed=width)
        columns = torch.zeros(width, dtype=torch.bool)
        columns[::3] = True
        columns[width // 2 - 2 : width // 2 + 2] = True
        image_full, image_masked = ifft2c(full), ifft2c(full * columns)
        while width > 1:
            width //= 2
            image_full = fourier_resize(image_full, (12, width))
            image_masked = fourier_resize(image_masked, (12, width))
            columns = pool_columns(columns, width)
            k_full, k_masked = fft2c(image_full), fft2c(image_masked)
            torch.testing.assert_close(k_masked[..., columns], k_full[..., columns], atol=1e-5, rtol=1e-5)
    # an even pooled width folds the Nyquist column onto the first: acquired only if both were
    columns = torch.ones(8, dtype=torch.bool)
    columns[6] = False  # 8 -> 4 keeps columns 2..5 and folds column 6 onto the first
    assert pool_columns(columns, 4).tolist() == [False, True, True, True]


def test_data_consistency_keeps_acquired_samples_exactly():
    kspace, columns = _masked(batch=3, h=16, w=16)
    features = torch.randn(3, 5, 16, 16, dtype=torch.complex64)
    out = replace_acquired(features, kspace, columns)
    keep = columns[:, None, None, :].expand_as(out)
    assert torch.equal(out[keep], kspace[:, None].expand_as(out)[keep])  # every channel, bit for bit
    assert torch.equal(out[~keep], features[~keep])
    # the layer (image in, image out) at full resolution: exact up to one FFT round trip
    image = ComplexResUNet.data_consistency(to_split(ifft2c(features)), kspace, columns)
    torch.testing.assert_close(fft2c(to_complex(image))[keep], out[keep], atol=1e-5, rtol=0)


def test_every_pooled_level_puts_back_the_acquired_samples():
    torch.manual_seed(0)
    model = ComplexResUNet(SIZES["small"], dropout=0.0)
    kspace, columns = _masked(batch=2, h=32, w=32)
    seen = []

    def recording(x, reference, cols):
        out = ComplexResUNet.data_consistency(x, reference, cols)
        seen.append((out, reference, cols))
        return out

    model.data_consistency = recording
    model(apply_column_masks(kspace, columns), columns)
    assert [out.shape[-1] for out, _, _ in seen] == [16, 8, 4, 2]
    image = ifft2c(apply_column_masks(kspace, columns))
    mean = image.mean(dim=(-2, -1), keepdim=True)
    standardized = (image - mean) / (image - mean).abs().square().mean(dim=(-2, -1), keepdim=True).sqrt()
    for out, reference, cols in seen:
        keep = cols[:, None, None, :].expand(out.shape[0], out.shape[1] // 2, *out.shape[-2:])
        k = fft2c(to_complex(out))
        torch.testing.assert_close(k[keep], reference[:, None].expand_as(k)[keep], atol=1e-5, rtol=0)
        # the reference is the standardized network input, pooled to this level
        pooled = fft2c(fourier_resize(standardized, tuple(out.shape[-2:])))
        torch.testing.assert_close(reference, pooled, atol=1e-5, rtol=1e-5)
        assert cols.any()  # the centre stays acquired at every level


def test_the_recon_interface():
    torch.manual_seed(0)
    model = ComplexUNetConfig().build().eval()
    kspace, columns = _masked(batch=2, h=24, w=20)
    masked = apply_column_masks(kspace, columns)
    out = model(masked, columns)
    assert out.shape == (2, 24, 20) and out.dtype == torch.complex64
    shared = model(kspace * columns[0], columns[0])
    torch.testing.assert_close(shared, model(kspace * columns[0], columns[0].expand(2, -1)))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # complex layers run in float32 regardless
        torch.testing.assert_close(model(masked, columns), out)
    with pytest.raises(ValueError, match="too small"):
        model(torch.zeros(1, 8, 8, dtype=torch.complex64), torch.ones(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="complex"):
        model(torch.zeros(1, 32, 32), torch.ones(32, dtype=torch.bool))
    with pytest.raises(ValueError, match="size"):
        ComplexUNetConfig(size="medium")


@pytest.fixture(scope="module")
def overfit():
    """The small (209k) network on four 32x32 ellipse slices at R=4, the study's dropout 0.1 and AdamW."""
    magnitude, phase = ellipse_images(4, 32, seed=0)
    slices = slices_from_images(magnitude, phase)
    cfg = TrainConfig(
        lr=2e-3, batch_size=4, steps=200, eval_every=50, acceleration=4, num_acs=4, device="cpu",
        num_threads=1, optimizer="adamw",
    )  # fmt: skip
    start = time.perf_counter()
    result = train_varnet(slices, slices, ComplexUNetConfig(size="small", dropout=0.1), cfg)
    return result, slices, cfg, time.perf_counter() - start


def test_overfits_a_small_batch_well_below_zero_filled(overfit):
    result, slices, cfg, seconds = overfit
    masks = validation_masks(32, slices.num_slices, cfg)
    masked = apply_column_masks(slices.kspace, masks)
    data_range = volume_max(slices)
    zf_loss = float(SSIMLoss()(VarNet.image(masked), slices.target, data_range))
    model = result.model.eval()
    with torch.no_grad():
        model_loss = float(SSIMLoss()(VarNet.image(model(masked, masks)), slices.target, data_range))
    print(f"\ncomplex U-Net: 200 steps in {seconds:.1f}s, SSIM loss {model_loss:.3f} vs zf {zf_loss:.3f}")
    assert model_loss < 0.5 * zf_loss and zf_loss - model_loss > 0.15
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    # and the evaluation of the VarNet scores it the same way
    volumes = [("v", slices.kspace, slices.target)]
    summary = evaluate_reconstruction(model, volumes, equispaced_mask(32, 4, 4, offset=1)).summary
    assert summary["ssim"] > summary["zf_ssim"] + 0.1 and summary["mse"] < summary["zf_mse"]


def _tiny_data(count=6, size=16, seed=1):
    magnitude, phase = ellipse_images(count, size, seed)
    return slices_from_images(magnitude, phase, volume=[i // 2 for i in range(count)])


def _cfg(**kw):
    base = dict(
        lr=1e-3, batch_size=2, steps=8, eval_every=4, acceleration=4, num_acs=4, device="cpu",
        num_threads=1, optimizer="adamw", lr_gamma=0.5,
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_resume_repeats_the_uninterrupted_run_with_dropout_and_decay(tmp_path):
    train, val = _tiny_data(), _tiny_data(count=2, seed=2)
    checkpoints = []
    straight = train_varnet(train, val, TINY, _cfg(), report=lambda m, c: checkpoints.append(c))
    assert checkpoints[0]["model_kind"] == "complex_unet" and checkpoints[0]["model_config"]["dropout"] == 0.2
    torch.save(checkpoints[0], tmp_path / "step4.pt")
    halfway = torch.load(tmp_path / "step4.pt", weights_only=True)
    resumed = train_varnet(train, val, TINY, _cfg(), resume=halfway)
    for key, value in straight.model.state_dict().items():  # batch-norm running statistics included
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert resumed.history == straight.history and resumed.best_val_ssim == straight.best_val_ssim
    # dropout is live, so the equality above covers its masks (drawn from (seed, step), not torch's RNG)
    no_dropout = train_varnet(train, val, ComplexUNetConfig(features=[2, 4], dropout=0.0), _cfg(steps=4))
    assert not torch.equal(no_dropout.model.state_dict()["head.bias"], halfway["model"]["head.bias"])


def test_adamw_and_the_per_epoch_learning_rate():
    cfg = _cfg(batch_size=4, lr=1e-3, lr_gamma=0.9)
    # 10 slices, batch 4: epochs completed after steps 0..5 are 0, 0, 0, 1, 1, 2
    assert [learning_rate(cfg, s, 10) for s in range(6)] == pytest.approx([1e-3] * 3 + [9e-4] * 2 + [8.1e-4])
    assert learning_rate(_cfg(lr_gamma=1.0), 10**6, 3) == 1e-3
    params = [torch.nn.Parameter(torch.zeros(1))]
    adamw = make_optimizer(params, cfg)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.01
    adam = make_optimizer(params, _cfg(optimizer="adam"))
    assert type(adam) is torch.optim.Adam and adam.defaults["weight_decay"] == 0
    assert make_optimizer(params, _cfg(weight_decay=0.05)).defaults["weight_decay"] == 0.05
    with pytest.raises(ValueError, match="adamw"):
        make_optimizer(params, _cfg(optimizer="sgd"))
