"""Real/synthetic mixing (the second study's Table III): a p share of the recTrain patients keeps its
acquired phase, the rest takes a source's synthetic phase; and the real-only control, which trains on that
p share alone. No k-space is synthesized for it: it picks shards the grid already has.

Cells: ``{"source", "acceleration", "num_acs", "seed", "real_fraction": p}`` for 0 < p < 1 (p = 0 is the
source's own cell and p = 1 the gt cell: they are not trained twice), and with ``grid.real_only``
``{"source": "gt", ..., "real_fraction": p, "real_only": True}`` once per p.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from phaselab.config import SweepConfig
from phaselab.data.fastmri_io import read_attrs
from phaselab.orchestration.sweep import SweepContext, synthesis_draw

_PATIENT_STREAM = 7211  # keeps the choice of real patients apart from the other seeded streams


def mixing_cells(config: SweepConfig, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plain grid's cells plus the mixing and real-only cells of ``grid.real_fraction``."""
    g = config.grid
    fractions = sorted({float(p) for p in g.real_fraction if 0 < p < 1})
    if not g.real_fraction:
        return cells
    plain = list(cells)
    extra: list[dict[str, Any]] = []
    keys = ("acceleration", "num_acs", "center_fraction", "seed", "model")
    bases = {tuple(c.get(k) for k in keys): c for c in cells}
    for p in fractions:
        for cell in plain:
            if cell["source"] != "gt":
                extra.append({**cell, "real_fraction": p})
        if g.real_only:
            for base in bases.values():
                extra.append({**base, "source": "gt", "real_fraction": p, "real_only": True})
    if 1.0 in g.real_fraction or g.real_only:  # p = 1 (and the control's top) is the gt cell
        for base in bases.values():
            gt = {**base, "source": "gt"}
            if gt not in plain:
                extra.append(gt)
    seen, merged = set(), []
    for cell in [*plain, *extra]:
        key = tuple(sorted(cell.items()))
        if key not in seen:
            seen.add(key)
            merged.append(cell)
    return merged


def real_patients(patients: list[str], fraction: float, seed: int) -> set[str]:
    """ceil(fraction x N) whole patients chosen by ``seed``; nested: a larger fraction keeps the smaller
    fraction's patients (one permutation per seed, cut at different lengths)."""
    if fraction <= 0:
        return set()
    order = sorted(patients)
    permutation = np.random.default_rng([seed, _PATIENT_STREAM]).permutation(len(order))
    count = min(len(order), math.ceil(fraction * len(order)))
    return {order[i] for i in permutation[:count]}


def cell_shards(ctx: SweepContext, cell: dict[str, Any]) -> tuple[list[str], list[str], list[str] | None]:
    """Training and validation shards of a cell, and the shards whose slices its epochs count (None: its
    own training set; the real-only control trains as many steps as the full recTrain would)."""
    source, seed = cell["source"], cell["seed"]
    shards = ctx.shards[source][synthesis_draw(source, seed)]
    fraction = cell.get("real_fraction")
    if fraction is None:
        return shards["recTrain"], shards["recVal"], None
    prepared = [str(p) for p in ctx.prepared.files("recTrain")]
    patients = [str(read_attrs(p).get("patient_id")) for p in prepared]
    real = real_patients(sorted(set(patients)), fraction, seed)
    acquired = ctx.shards["gt"][synthesis_draw("gt", seed)]
    if cell.get("real_only"):
        train = [s for s, who in zip(acquired["recTrain"], patients, strict=True) if who in real]
        return train, acquired["recVal"], acquired["recTrain"]
    train = [
        real_shard if who in real else synthetic
        for real_shard, synthetic, who in zip(acquired["recTrain"], shards["recTrain"], patients, strict=True)
    ]
    return train, shards["recVal"], None
