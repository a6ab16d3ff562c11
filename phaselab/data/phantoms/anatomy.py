"""Phantom anatomy: tissue labels and intensities, random textures, and knee and brain cross-sections
painted as partial-volume tissue fractions."""

import math
from typing import NamedTuple

import numpy as np

AIR, FAT, MUSCLE, BONE, MARROW, CARTILAGE, FLUID, LIGAMENT, CSF, GREY, WHITE, SINUS, VESSEL = range(13)
TISSUES = (
    "air", "fat", "muscle", "bone", "marrow", "cartilage", "fluid",
    "ligament", "csf", "grey", "white", "sinus", "vessel",
)  # fmt: skip
# Nominal PD/T2-like intensity per tissue (index = label).
_INTENSITY = np.array([0.0, 0.95, 0.38, 0.04, 0.85, 0.62, 0.9, 0.08, 1.0, 0.62, 0.46, 0.0, 0.2])


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
