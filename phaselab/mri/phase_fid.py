"""Frechet Inception Distance of phase maps (SPEC sections 4 and 7.3), from local weights only.

FID through torchmetrics' ``FrechetInceptionDistance``. Phase maps are rendered as the SBDM study
did (phase replicated to 3 channels and scaled to uint8 images). The Inception weights come from a
file the caller names, loaded into :mod:`phaselab.mri.fid_inception`; nothing is downloaded.
:func:`phase_fid` takes any feature extractor instead, with torchmetrics' contract for a custom
``feature``: uint8 images (N, 3, H, W) in, features (N, D) out.
"""

from pathlib import Path

import numpy as np
import torch

from phaselab.mri.fid_inception import FidInceptionV3
from phaselab.mri.metrics import _remove_global_phase, _wrap
from phaselab.mri.phase_metrics import _volumes

FID_SKIPPED = (
    "FID skipped: pass --fid-weights PATH "
    "(a local pt_inception-2015-12-05 weights file; nothing is downloaded)"
)


def render_phase_images(
    phase, magnitude, *, threshold: float = 0.1, object_only: bool = False
) -> torch.Tensor:
    """uint8 images (S, 3, H, W): the wrapped phase mapped linearly from [-pi, pi] to [0, 255], rounded,
    replicated to 3 channels (the SBDM study's rendering).

    ``object_only``: first remove each slice's magnitude-weighted circular mean phase inside the object
    (magnitude > ``threshold`` x slice max) and set the phase outside it to 0 (grey 128), so that
    neither a global phase nor the background enters the FID, as in the weight-free distances.
    """
    phase, mag, mask = _volumes(phase, magnitude, threshold)
    phase = _wrap(phase)
    if object_only:
        phase = np.where(mask, _remove_global_phase(phase, mag, mask), 0.0)
    grey = np.clip(np.rint((phase + np.pi) / (2 * np.pi) * 255), 0, 255).astype(np.uint8)
    return torch.from_numpy(grey)[:, None].expand(-1, 3, -1, -1).contiguous()


def phase_fid(
    fake,
    real,
    magnitude,
    feature: torch.nn.Module,
    *,
    real_magnitude=None,
    threshold: float = 0.1,
    object_only: bool = False,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
) -> float:
    """FID between phase-map sets with any feature extractor, through torchmetrics.

    ``feature`` maps uint8 images (N, 3, H, W) to features (N, D) (torchmetrics' contract for a custom
    ``feature``). FID = ||mu_f - mu_r||^2 + Tr(C_f + C_r - 2 (C_f C_r)^{1/2}) of the features of
    :func:`render_phase_images` (Heusel et al., NeurIPS 2017). ``magnitude`` renders ``fake`` and,
    unless ``real_magnitude`` is given, ``real``; it matters only with ``object_only``. Global random
    state is left as it was (torchmetrics draws a dummy image to size a custom extractor).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    fake_images = render_phase_images(fake, magnitude, threshold=threshold, object_only=object_only)
    real_magnitude = magnitude if real_magnitude is None else real_magnitude
    real_images = render_phase_images(real, real_magnitude, threshold=threshold, object_only=object_only)
    if len(fake_images) < 2 or len(real_images) < 2:
        raise ValueError("FID needs at least 2 phase maps in each set")
    with torch.random.fork_rng(devices=[]):
        metric = FrechetInceptionDistance(feature=feature, normalize=False).to(device)
    with torch.no_grad():
        for images, is_real in ((fake_images, False), (real_images, True)):
            for start in range(0, len(images), batch_size):
                metric.update(images[start : start + batch_size].to(device), real=is_real)
        return float(metric.compute())


def load_inception(weights_path) -> FidInceptionV3:
    """The FID Inception v3 (:class:`~phaselab.mri.fid_inception.FidInceptionV3`) with the weights of
    the local file ``weights_path``: a state dict of tensors (loaded with ``weights_only=True``, so no
    code in the file runs) with exactly its layer names and shapes. Nothing is downloaded. Raises
    FileNotFoundError or ValueError naming the file.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception weights file {str(path)!r} does not exist; FID needs a local "
            "pt_inception-2015-12-05 weights file (nothing is downloaded)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not a PyTorch weights file: {error}") from error
    network = FidInceptionV3()
    expected = network.state_dict()
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not an Inception state dict")
    # batch-norm step counters are not part of the converted weights and do not matter in eval mode
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        k
        for k in set(expected) & set(state)
        if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape
    )
    if missing or unexpected or wrong:
        problems = [
            f"{len(items)} {what} (first: {items[0]})"
            for items, what in ((missing, "missing"), (unexpected, "unexpected"), (wrong, "of wrong shape"))
            if items
        ]
        raise ValueError(
            f"{str(path)!r} is not the FID Inception v3 (pt_inception-2015-12-05) state dict: "
            + "; ".join(problems)
        )
    network.load_state_dict(state, strict=False)
    return network


def inception_fid(
    fake,
    real,
    magnitude,
    weights_path,
    device: str | torch.device = "cpu",
    *,
    real_magnitude=None,
    threshold: float = 0.1,
    object_only: bool = False,
    batch_size: int = 32,
) -> float:
    """FID of the phase maps ``fake`` against ``real`` with Inception v3 weights from ``weights_path``.

    Inception v3 pool features (2048) of the SBDM study's rendering (:func:`render_phase_images`);
    Heusel et al., NeurIPS 2017. The published phase-map FIDs (SPEC section 4) used whole maps, which
    ``object_only=False`` (the default) reproduces. Callers without weights skip FID with
    ``FID_SKIPPED``.
    """
    return phase_fid(
        fake,
        real,
        magnitude,
        load_inception(weights_path),
        real_magnitude=real_magnitude,
        threshold=threshold,
        object_only=object_only,
        device=device,
        batch_size=batch_size,
    )
