"""Embedded phantom dataset: knee and brain "patients" whose complex images carry realistic MRI phase.

Phase = smooth B0 polynomial + coil phase (patient-specific, anatomy-independent) + tissue offsets
(chemical shift of fat and marrow, fluid, grey/white matter) + susceptibility phase (dipole field of the
susceptibility map, strong at air and bone boundaries). The last two follow the anatomy, so a network
can learn them from the magnitude; a smooth random field cannot imitate them (SPEC section 2).
"""

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from phaselab.data.fastmri_io import read_attrs, write_volume

KINDS = ("knee", "brain")
PHANTOM_VERSION = 1
# std of the complex noise at 256 x 256 relative to the brightest tissue; coarser grids average more
# signal per pixel, so their default noise is lower in proportion to the size
NOISE_AT_256 = 0.012
# width (normalized units, the image spans 2) over which phase changes at tissue boundaries: ~2
# pixels at 256 x 256, so phase gradients scale with the image size as measured on real data
PHASE_EDGE = 0.016
_KIND_CODE = {"knee": 1, "brain": 2}

AIR, FAT, MUSCLE, BONE, MARROW, CARTILAGE, FLUID, LIGAMENT, CSF, GREY, WHITE, SINUS, VESSEL = range(13)
TISSUES = (
    "air", "fat", "muscle", "bone", "marrow", "cartilage", "fluid",
    "ligament", "csf", "grey", "white", "sinus", "vessel",
)  # fmt: skip
# Per tissue (index = label): nominal PD/T2-like intensity; phase offset in rad (fat and marrow are
# scaled by the patient's fat shift, the rest by its tissue-contrast factor); susceptibility in ppm
# relative to water (air +9, cortical bone -2.2, fat +0.6, venous blood +0.45).
_INTENSITY = np.array([0.0, 0.95, 0.38, 0.04, 0.85, 0.62, 0.9, 0.08, 1.0, 0.62, 0.46, 0.0, 0.2])
_OFFSET = np.array([0.0, 1.0, 0.0, 0.0, 0.9, 0.35, -0.45, 0.3, -0.6, 0.4, -0.35, 0.0, 0.8])
_CHI = np.array([9.0, 0.6, 0.0, -2.2, 0.5, -0.1, 0.0, -0.1, 0.0, 0.0, -0.05, 9.0, 0.45])
_FATTY = np.isin(np.arange(len(TISSUES)), [FAT, MARROW])


class PhantomSlice(NamedTuple):
    """One slice; ``image`` includes noise, the other arrays are noise-free."""

    image: np.ndarray  # complex64 (H, W)
    magnitude: np.ndarray  # float32 (H, W), noise-free |image|
    phase: np.ndarray  # float32 (H, W), noise-free phase in (-pi, pi]
    anatomy_phase: np.ndarray  # float32 (H, W), tissue offsets + susceptibility part of the phase (rad)
    labels: np.ndarray  # uint8 (H, W), dominant tissue per pixel, see TISSUES


class PhantomVolume(NamedTuple):
    """One patient: arrays (S, H, W); ``kspace = fft2c(image)`` (centered, orthonormal)."""

    kspace: np.ndarray  # complex64
    image: np.ndarray  # complex64, with noise
    phase: np.ndarray  # float32, noise-free phase
    magnitude: np.ndarray  # float32, noise-free magnitude
    labels: np.ndarray  # uint8
    anatomy_phase: np.ndarray  # float32


# ---- continuous random textures ------------------------------------------------------------------


class _Modes(NamedTuple):
    """A random field as a sum of plane waves in anatomical coordinates (u, v, z); unit variance."""

    k: np.ndarray  # (N, 3) cycles per unit
    phase: np.ndarray  # (N,)


def _modes(rng: np.random.Generator, n: int, k_lo: float, k_hi: float, squash_v: float = 1.0) -> _Modes:
    radius = np.exp(rng.uniform(math.log(k_lo), math.log(k_hi), n))
    angle = rng.uniform(0, 2 * math.pi, n)
    # slices are thick: textures change more slowly through-plane than in-plane
    k = np.stack(
        [radius * np.cos(angle), squash_v * radius * np.sin(angle), 0.3 * radius * rng.normal(size=n)], 1
    )
    return _Modes(k, rng.uniform(0, 2 * math.pi, n))


class _Frame(NamedTuple):
    """Pixel grid and its affine map to anatomical coordinates: (u, v) = A @ (x, y) + b."""

    x: np.ndarray  # (W,) normalized column coordinate in [-1, 1)
    y: np.ndarray  # (H,)
    a: np.ndarray  # (2, 2)
    b: np.ndarray  # (2,)
    u: np.ndarray  # (H, W)
    v: np.ndarray  # (H, W)
    px: float  # pixel size in normalized units


def _frame(size: int, rotation: float, shift: np.ndarray, scale: float) -> _Frame:
    x = (np.arange(size) - size // 2) / (size / 2)
    c, s = math.cos(rotation), math.sin(rotation)
    a = np.array([[c, s], [-s, c]]) / scale
    b = -a @ shift
    u = a[0, 0] * x[None, :] + a[0, 1] * x[:, None] + b[0]
    v = a[1, 0] * x[None, :] + a[1, 1] * x[:, None] + b[1]
    return _Frame(x, x, a, b, u, v, 2.0 / size)


def _texture(m: _Modes, f: _Frame, z: float) -> np.ndarray:
    # the phase of each wave is affine in (x, y), so the sum factorizes into one (H,N)@(N,W) product
    kx = m.k[:, 0] * f.a[0, 0] + m.k[:, 1] * f.a[1, 0]
    ky = m.k[:, 0] * f.a[0, 1] + m.k[:, 1] * f.a[1, 1]
    k0 = m.k[:, 0] * f.b[0] + m.k[:, 1] * f.b[1] + m.k[:, 2] * z
    ax = 2 * math.pi * kx[:, None] * f.x[None, :]
    ay = 2 * math.pi * (ky[:, None] * f.y[None, :] + k0[:, None]) + m.phase[:, None]
    # cos(ay + ax) expanded into real products; einsum's own loops, since multithreaded BLAS stalls
    # on small matrices when the cores are busy (e.g. training in parallel)
    field = np.einsum("nh,nw->hw", np.cos(ay), np.cos(ax), optimize=False)
    field -= np.einsum("nh,nw->hw", np.sin(ay), np.sin(ax), optimize=False)
    return math.sqrt(2.0 / len(m.phase)) * field


# ---- shapes (signed distances in normalized units, negative inside) --------------------------------


def _ellipse(f: _Frame, cu: float, cv: float, au: float, av: float, tilt: float = 0.0) -> np.ndarray:
    du, dv = f.u - cu, f.v - cv
    if tilt:
        du, dv = du * math.cos(tilt) + dv * math.sin(tilt), -du * math.sin(tilt) + dv * math.cos(tilt)
    q = np.hypot(du / au, dv / av)
    grad = np.hypot(du / au**2, dv / av**2) / np.maximum(q, 1e-9)
    return (q - 1) / np.maximum(grad, 1e-9)


def _inside(d: np.ndarray, px: float) -> np.ndarray:
    """Soft (anti-aliased) indicator of d < 0, about one pixel wide."""
    return 0.5 * (1 - np.tanh(d / (0.6 * px)))


class _Canvas:
    """Partial-volume tissue fractions, painted layer over layer."""

    def __init__(self, shape: tuple[int, int]):
        self.f = np.zeros((len(TISSUES), *shape))
        self.f[AIR] = 1.0

    def paint(self, tissue: int, amount: np.ndarray) -> None:
        self.f *= 1 - amount
        self.f[tissue] += amount


# ---- anatomy -------------------------------------------------------------------------------------


def _draw_anatomy(kind: str, rng: np.random.Generator) -> dict:
    u = rng.uniform
    p = {
        "rotation": math.radians(u(-12, 12)),
        "shift": rng.normal(0, 0.04, 2),
        "scale": u(0.9, 1.06),
        "intensity": _INTENSITY * np.exp(rng.normal(0, 0.07, len(TISSUES))),
        "texture": _modes(rng, 48, 1.5, 6.0),
        "fine": _modes(rng, 48, 2.5, 6.0),
        "micro": _modes(rng, 64, 3.0, 9.0),
    }
    if kind == "knee":
        p.update(
            width=u(0.6, 0.74), fat=u(0.045, 0.09), joint=u(-0.08, 0.08), gap=u(0.035, 0.05),
            condyle=(u(0.36, 0.44), u(0.16, 0.21)), femur=u(0.17, 0.22), notch=u(0.06, 0.09),
            plateau=(u(0.35, 0.42), u(0.1, 0.13)), tibia=u(0.16, 0.21), tibia_shift=u(-0.04, 0.04),
            cortex=u(0.02, 0.03), cartilage=u(0.022, 0.032), fibula=rng.choice([-1.0, 1.0]),
            septa=_modes(rng, 32, 1.5, 3.5, squash_v=0.25), vessels=rng.uniform(-0.5, 0.5, (4, 2)),
        )  # fmt: skip
    else:
        p.update(
            head=(u(0.64, 0.74), u(0.8, 0.88)), scalp=u(0.035, 0.05), skull=u(0.04, 0.055),
            csf=u(0.015, 0.025), white=u(0.68, 0.76), folds=u(0.06, 0.09), ventricle=u(0.8, 1.3),
            sinus=u(0.8, 1.2), vessels=rng.uniform(-0.45, 0.45, (6, 2)), sulci=_modes(rng, 48, 3.0, 8.0),
        )  # fmt: skip
    return p


def _knee(p: dict, f: _Frame, z: float, canvas: _Canvas) -> None:
    """Coronal knee: leg with subcutaneous fat, muscle, femur over tibia, cartilage, joint fluid."""
    px, paint = f.px, canvas.paint
    yj = p["joint"] + 0.03 * z
    half_gap = p["gap"] / 2
    body = np.abs(f.u) - p["width"] * (0.96 + 0.1 * f.v**2) - 0.015 * _texture(p["texture"], f, z)
    paint(FAT, _inside(body, px))
    muscle = _inside(body + p["fat"], px)
    paint(MUSCLE, muscle)
    paint(FAT, muscle * 0.35 * np.exp(-((_texture(p["septa"], f, z) / 0.12) ** 2)))
    for cu, cv in p["vessels"]:
        paint(VESSEL, muscle * _inside(_ellipse(f, cu, cv, 0.025, 0.025), px))

    # bones shrink towards the front and back of the knee (slice position z)
    width = 1 - 0.3 * z**2
    ca, cb = p["condyle"][0] * width, p["condyle"][1]
    fc = yj - half_gap - cb
    femur = np.minimum(_ellipse(f, 0, fc, ca, cb), np.maximum(np.abs(f.u) - p["femur"], f.v - fc))
    notch_depth = p["notch"] * float(np.clip(0.6 + 1.5 * z, 0.1, 1.6))
    femur = np.maximum(femur, -_ellipse(f, 0, yj - half_gap, 0.07 * width, notch_depth))
    pa, pb = p["plateau"][0] * width, p["plateau"][1]
    tc, tu = yj + half_gap + pb, p["tibia_shift"]
    tibia = np.minimum(_ellipse(f, tu, tc, pa, pb), np.maximum(np.abs(f.u - tu) - p["tibia"], tc - f.v))
    bones = np.minimum(femur, tibia)
    if z > -0.15:
        bones = np.minimum(bones, _ellipse(f, p["fibula"] * pa * 0.85, tc + 0.25, 0.07, 0.11))

    paint(FLUID, _inside(_ellipse(f, tu / 2, yj, 0.75 * pa, 2.2 * half_gap), px))
    near_joint = _inside(np.abs(f.v - yj) - 0.16, px)
    paint(CARTILAGE, _inside(bones - p["cartilage"], px) * near_joint)
    for side in (-1, 1):
        paint(LIGAMENT, _inside(_ellipse(f, tu + side * 0.88 * pa, yj, 0.09, 1.2 * half_gap), px))
    paint(BONE, _inside(bones, px))
    marrow = _inside(bones + p["cortex"], px)
    paint(MARROW, marrow)
    paint(BONE, marrow * 0.15 * np.exp(-((_texture(p["fine"], f, z) / 0.3) ** 2)))
    if z > 0:
        paint(LIGAMENT, _inside(_ellipse(f, 0, yj - half_gap - 0.06, 0.03, 0.09, tilt=0.4), px))


def _brain(p: dict, f: _Frame, z: float, canvas: _Canvas) -> None:
    """Axial brain: scalp fat, skull with diploe, CSF, folded grey/white matter, ventricles, sinuses."""
    px, paint = f.px, canvas.paint
    size = math.sqrt(max(1 - (z / 1.2) ** 2, 0.2))
    ha, hb = p["head"][0] * size, p["head"][1] * size
    head = _ellipse(f, 0, 0.02, ha, hb)
    paint(FAT, _inside(head, px))
    paint(BONE, _inside(head + p["scalp"], px))
    diploe = head + p["scalp"] + 0.5 * p["skull"]
    paint(MARROW, _inside(np.abs(diploe) - 0.2 * p["skull"], px))
    inner = p["scalp"] + p["skull"]
    paint(CSF, _inside(head + inner, px))
    brain = head + inner + p["csf"] + 0.01 * _texture(p["texture"], f, z)
    paint(GREY, _inside(brain, px))
    depth = 1 + brain / min(ha, hb)  # ~0 at the centre, 1 at the brain surface
    gyri = _texture(p["sulci"], f, z)
    paint(CSF, _inside(brain, px) * _inside(0.9 - depth, px) * 0.9 * np.exp(-((gyri / 0.15) ** 2)))
    white = depth + p["folds"] * _texture(p["fine"], f, z) - p["white"]
    paint(WHITE, _inside(white * min(ha, hb), px))
    fissure = np.maximum(np.abs(f.u) - 0.012, 0.28 * hb - np.abs(f.v - 0.1))
    paint(CSF, _inside(brain, px) * _inside(fissure, px))
    vent = p["ventricle"] * math.sqrt(max(1 - ((z - 0.1) / 0.45) ** 2, 0.0))
    if vent > 0.05:
        for side in (-1, 1):
            paint(CSF, _inside(_ellipse(f, side * 0.08, -0.02, 0.05 * vent, 0.24 * vent, side * 0.3), px))
    for cu, cv in p["vessels"]:
        paint(VESSEL, _inside(brain, px) * _inside(_ellipse(f, cu, cv, 0.012, 0.012), px))
    paint(VESSEL, _inside(_ellipse(f, 0, 0.02 + hb - inner - 0.03, 0.03, 0.025), px))
    # frontal sinus and mastoid air cells appear in the lower slices
    sinus = p["sinus"] * float(np.clip((0.15 - z) / 0.5, 0, 1))
    if sinus > 0.05:
        paint(SINUS, _inside(_ellipse(f, 0, 0.02 - hb + p["scalp"] + 0.06, 0.13 * sinus, 0.07 * sinus), px))
        for side in (-1, 1):
            paint(SINUS, _inside(_ellipse(f, side * 0.62 * ha, 0.38, 0.06 * sinus, 0.08 * sinus), px))


# ---- phase ---------------------------------------------------------------------------------------


def _draw_phase(rng: np.random.Generator) -> dict:
    u = rng.uniform
    return {
        "fat_shift": u(1.1, 1.6),  # chemical shift of fat at the echo time, rad
        "contrast": u(0.9, 1.3),
        "rad_per_ppm": u(0.18, 0.3),  # field strength x echo time
        "b0": rng.normal(0, [0.3, 0.3, 0.15, 0.15, 0.15]),  # x, y, x^2, xy, y^2
        "b0_drift": rng.normal(0, 0.15, 5),  # change of the B0 terms through the slab
        "coil": (u(0, 2 * math.pi), u(1.5, 2.0), u(0.6, 1.1), u(0.4, 0.9)),  # angle, distance, phase, shading
        "global": u(-math.pi, math.pi),
        "micro": 0.0,  # rad per unit of tissue microstructure (iron, myelin, fibres)
    }


def _mix(per_tissue: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Fraction-weighted sum of a per-tissue property, (T,) x (T, H, W) -> (H, W)."""
    return np.einsum("t,thw->hw", per_tissue, fractions, optimize=False)


def _anatomy_phase(offset: np.ndarray, chi: np.ndarray, rad_per_ppm: float, edge: float) -> np.ndarray:
    """Tissue offsets (rad) plus the dipole field of the susceptibility map chi (ppm), B0 along the
    rows (y), both smoothed by a Gaussian of ``edge`` pixels (a fixed physical width)."""
    h, w = chi.shape
    # mirror padding keeps the FFT's periodic copies from touching the object
    pad = ((h // 2, h // 2), (w // 2, w // 2))
    ky = np.fft.fftfreq(2 * (h // 2) + h)[:, None]
    kx = np.fft.fftfreq(2 * (w // 2) + w)[None, :]
    k2 = kx**2 + ky**2
    dipole = np.where(k2 > 0, 1 / 3 - ky**2 / np.where(k2 > 0, k2, 1), 0.0)
    spectrum = np.fft.fft2(np.pad(offset, pad, mode="reflect"))
    spectrum += rad_per_ppm * dipole * np.fft.fft2(np.pad(chi, pad, mode="reflect"))
    spectrum *= np.exp(-2 * math.pi**2 * edge**2 * k2)
    return np.fft.ifft2(spectrum).real[h // 2 : h // 2 + h, w // 2 : w // 2 + w]


def _smooth_phase(q: dict, f: _Frame, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy-independent phase (B0 polynomial + coil + global) and the coil's intensity shading."""
    x, y = f.x[None, :], f.x[:, None]
    coeff = q["b0"] + z * q["b0_drift"]
    b0 = coeff[0] * x + coeff[1] * y + coeff[2] * x**2 + coeff[3] * x * y + coeff[4] * y**2
    angle, distance, strength, falloff = q["coil"]
    centre = distance * np.exp(1j * (angle + 0.3 * z))
    offset = (x + 1j * y) - centre
    coil = strength * np.angle(offset * np.exp(-1j * np.angle(-centre)))
    shading = (distance / np.abs(offset)) ** falloff
    return b0 + coil + q["global"] + 0.3 * z, shading


def _slice_position(index: int, slices: int) -> float:
    """Slice position in the slab, in normalized units; the slab spans at most [-0.5, 0.5]."""
    return (index - (slices - 1) / 2) * min(0.12, 1.0 / max(slices - 1, 1))


def _patient(kind: str, seed: int, patient_index: int) -> tuple[dict, dict]:
    rng = np.random.default_rng([seed, _KIND_CODE[kind], patient_index])
    return _draw_anatomy(kind, rng), _draw_phase(rng)


def _render(
    kind: str, size: int, anatomy: dict, phase: dict, z: float, noise_rng, noise: float
) -> PhantomSlice:
    f = _frame(size, anatomy["rotation"], anatomy["shift"], anatomy["scale"])
    canvas = _Canvas((size, size))
    (_knee if kind == "knee" else _brain)(anatomy, f, z, canvas)
    fractions = canvas.f

    offsets = _OFFSET * np.where(_FATTY, phase["fat_shift"], phase["contrast"])
    micro = _texture(anatomy["micro"], f, z)
    anatomy_phase = phase["micro"] * micro + _anatomy_phase(
        _mix(offsets, fractions), _mix(_CHI, fractions), phase["rad_per_ppm"], PHASE_EDGE / f.px
    )
    smooth, shading = _smooth_phase(phase, f, z)
    texture = 1 + 0.05 * _texture(anatomy["texture"], f, z)
    magnitude = _mix(anatomy["intensity"], fractions) * texture * shading
    clean_phase = np.angle(np.exp(1j * (smooth + anatomy_phase)))
    clean = magnitude * np.exp(1j * clean_phase)
    image = clean + noise * (noise_rng.normal(size=clean.shape) + 1j * noise_rng.normal(size=clean.shape))
    return PhantomSlice(
        image=image.astype(np.complex64),
        magnitude=magnitude.astype(np.float32),
        phase=clean_phase.astype(np.float32),
        anatomy_phase=anatomy_phase.astype(np.float32),
        labels=fractions.argmax(0).astype(np.uint8),
    )


# ---- public API ----------------------------------------------------------------------------------


def _check(kind: str, size: int, slices: int, noise: float | None) -> float:
    """Validate the common arguments; returns the noise level to use."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if size < 32:
        raise ValueError(f"size must be >= 32 pixels, got {size}")
    if slices < 1:
        raise ValueError(f"slices must be >= 1, got {slices}")
    if noise is None:
        return NOISE_AT_256 * size / 256
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    return float(noise)


def make_phantom_slice(
    kind: str,
    size: int,
    *,
    seed: int,
    patient_index: int,
    slice_index: int,
    slices: int,
    noise: float | None = None,
) -> PhantomSlice:
    """Slice ``slice_index`` of ``slices`` of one patient; identical to that slice of its volume."""
    noise = _check(kind, size, slices, noise)
    if not 0 <= slice_index < slices:
        raise ValueError(f"slice_index must be in [0, {slices}), got {slice_index}")
    anatomy, phase = _patient(kind, seed, patient_index)
    noise_rng = np.random.default_rng([seed, _KIND_CODE[kind], patient_index, 1, slice_index])
    return _render(kind, size, anatomy, phase, _slice_position(slice_index, slices), noise_rng, noise)


def make_phantom_volume(
    kind: str, size: int, slices: int, seed: int, patient_index: int, noise: float | None = None
) -> PhantomVolume:
    """All slices of one phantom patient; deterministic in (kind, size, slices, seed, patient_index, noise).

    ``noise`` is the std of the real and of the imaginary Gaussian noise added to the image, relative
    to the nominal brightest tissue (intensity ~1); None: ``NOISE_AT_256 * size / 256``. Outside the
    object the phase is then uniform.
    """
    noise = _check(kind, size, slices, noise)
    if patient_index < 0 or seed < 0:
        raise ValueError(f"seed and patient_index must be >= 0, got {seed}, {patient_index}")
    anatomy, phase = _patient(kind, seed, patient_index)
    parts = [
        _render(
            kind,
            size,
            anatomy,
            phase,
            _slice_position(s, slices),
            np.random.default_rng([seed, _KIND_CODE[kind], patient_index, 1, s]),
            noise,
        )  # fmt: skip
        for s in range(slices)
    ]
    image = np.stack([p.image for p in parts])
    # centered orthonormal FFT, as phaselab.mri.fft.fft2c (kept in numpy: the HDF5 layer is numpy)
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return PhantomVolume(
        kspace=kspace.astype(np.complex64),
        image=image,
        phase=np.stack([p.phase for p in parts]),
        magnitude=np.stack([p.magnitude for p in parts]),
        labels=np.stack([p.labels for p in parts]),
        anatomy_phase=np.stack([p.anatomy_phase for p in parts]),
    )


def phantom_path(out_dir: str | Path, kind: str, patient_index: int) -> Path:
    return Path(out_dir) / f"phantom_{kind}_p{patient_index:03d}.h5"


def _up_to_date(path: Path, wanted: dict) -> bool:
    if not path.is_file():
        return False
    try:
        attrs = read_attrs(path)
    except (OSError, ValueError):  # unreadable or partial file: regenerate it
        return False
    return all(attrs.get(f"phaselab_{key}") == value for key, value in wanted.items())


def write_phantom_dataset(
    out_dir: str | Path,
    *,
    patients: int,
    slices: int,
    size: int,
    kind: str = "knee",
    seed: int = 0,
    noise: float | None = None,
) -> list[Path]:
    """Write one fastMRI single-coil file per patient (``phantom_<kind>_p<NNN>.h5``); returns the paths.

    Target ``reconstruction_esc`` = |image|; extras ``phaselab_labels`` (uint8 tissue labels) and
    ``phaselab_clean_phase`` (noise-free phase). Files that exist with the same generator settings
    are kept, so reruns are cheap.
    """
    noise = _check(kind, size, slices, noise)
    if patients < 1 or seed < 0:
        raise ValueError(f"patients must be >= 1 and seed >= 0, got {patients}, {seed}")
    paths = []
    for index in range(patients):
        path = phantom_path(out_dir, kind, index)
        wanted = {
            "source": "phantom", "kind": kind, "seed": seed, "size": size, "slices": slices,
            "noise": float(noise), "patient_index": index, "version": PHANTOM_VERSION,
        }  # fmt: skip
        if not _up_to_date(path, wanted):
            volume = make_phantom_volume(kind, size, slices, seed, index, noise)
            write_volume(
                path,
                volume.kspace,
                patient_id=f"phantom-{kind}-{index:03d}",
                acquisition="CORPD_FBK" if kind == "knee" else "AXT2",
                target=np.abs(volume.image),
                extras={"phaselab_labels": volume.labels, "phaselab_clean_phase": volume.phase},
                extra_attrs=wanted,
            )
        paths.append(path)
    return paths
