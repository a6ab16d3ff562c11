"""Patient-level splits (genTrain/genVal/genTest, recTrain/recVal/recTest) and their JSON manifest."""

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import list_volumes, read_attrs

# genTest is not drawn: it is the union of the three rec* splits (the generators never see it).
PARTS = ("genTrain", "genVal", "recTrain", "recVal", "recTest")
SPLITS = ("genTrain", "genVal", "genTest", "recTrain", "recVal", "recTest")
REC_SPLITS = ("recTrain", "recVal", "recTest")


def _fractions_from_counts(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {part: counts[part] / total for part in PARTS}


# Patient counts of the first study (SPEC section 2); knee 556 patients, brain 3101.
PRESETS: dict[str, dict[str, float]] = {
    "knee": _fractions_from_counts(
        {"genTrain": 330, "genVal": 30, "recTrain": 126, "recVal": 30, "recTest": 40}
    ),
    "brain": _fractions_from_counts(
        {"genTrain": 1928, "genVal": 149, "recTrain": 729, "recVal": 99, "recTest": 196}
    ),
}


@dataclass
class SplitManifest:
    """Which patients and which files are in each split; ``volumes`` are relative to ``root`` when set."""

    seed: int
    kind: str
    fractions: dict[str, float]
    patients: dict[str, list[str]]
    volumes: dict[str, list[str]]
    root: str | None = None

    def split_names(self) -> list[str]:
        return [s for s in SPLITS if s in self.patients]

    def files(self, split: str) -> list[Path]:
        """The files of ``split`` as paths (resolved against ``root`` when it is set)."""
        root = Path(self.root) if self.root is not None else None
        return [root / f if root is not None else Path(f) for f in self.volumes[split]]

    def to_json(self, path: str | Path) -> Path:
        """Write atomically (temp file in the same folder, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> "SplitManifest":
        path = Path(path)
        try:
            manifest = cls(**json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as err:
            raise DataError(path, f"not a readable split manifest ({err})") from err
        missing = [s for s in SPLITS if s not in manifest.patients or s not in manifest.volumes]
        if missing:
            raise DataError(path, f"split manifest lacks splits {missing}")
        return manifest


def _resolve_fractions(fractions: Mapping[str, float] | None, kind: str) -> dict[str, float]:
    if fractions is None:
        if kind not in PRESETS:
            raise ValueError(f"unknown split preset {kind!r}; choose from {sorted(PRESETS)}")
        return dict(PRESETS[kind])
    values = {name: float(value) for name, value in fractions.items()}
    if "genTest" in values:  # allowed for readability, but it must be the union of the rec* splits
        gen_test = values.pop("genTest")
        if abs(gen_test - sum(values.get(s, 0.0) for s in REC_SPLITS)) > 1e-6:
            raise ValueError(f"fraction genTest={gen_test} must equal recTrain + recVal + recTest")
    if set(values) != set(PARTS):
        raise ValueError(f"fractions must name {PARTS} (genTest = rec*), got {sorted(fractions)}")
    if min(values.values()) <= 0 or abs(sum(values.values()) - 1) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, got {values}")
    return {part: values[part] for part in PARTS}


def _allocate(num_patients: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``fractions * num_patients`` with at least one patient per part."""
    raw = {part: fractions[part] * num_patients for part in PARTS}
    counts = {part: max(1, int(raw[part])) for part in PARTS}
    while sum(counts.values()) > num_patients:
        part = max((p for p in PARTS if counts[p] > 1), key=lambda p: counts[p] - raw[p])
        counts[part] -= 1
    while sum(counts.values()) < num_patients:
        part = max(PARTS, key=lambda p: raw[p] - counts[p])
        counts[part] += 1
    return counts


def split_patients(
    patient_files: Mapping[str, list[Path]],
    seed: int,
    fractions: Mapping[str, float] | None = None,
    kind: str = "knee",
    root: str | Path | None = None,
) -> SplitManifest:
    """Split patients (never slices or volumes of one patient) deterministically from ``seed``.

    ``fractions`` maps genTrain, genVal, recTrain, recVal, recTest (and optionally genTest, which must
    equal the rec* sum) to positive numbers summing to 1; None takes the study's proportions for
    ``kind`` ("knee" or "brain", see PRESETS). Every split gets at least one patient, so at least 5
    patients are needed. With ``root``, files are stored relative to it.
    """
    fractions = _resolve_fractions(fractions, kind)
    if len(patient_files) < len(PARTS):
        raise ValueError(
            f"need at least {len(PARTS)} patients (one per split {PARTS}), got {len(patient_files)}"
        )
    order = sorted(patient_files)
    permutation = np.random.default_rng(seed).permutation(len(order))
    shuffled = [order[i] for i in permutation]
    counts = _allocate(len(order), fractions)
    patients: dict[str, list[str]] = {}
    start = 0
    for part in PARTS:
        patients[part] = sorted(shuffled[start : start + counts[part]])
        start += counts[part]
    patients["genTest"] = sorted(p for split in REC_SPLITS for p in patients[split])
    root_path = Path(root).resolve() if root is not None else None

    def as_stored(path: Path) -> str:
        path = Path(path)
        if root_path is not None:
            return Path(path).resolve().relative_to(root_path).as_posix()
        return str(path)

    volumes = {
        split: [as_stored(f) for p in patients[split] for f in sorted(patient_files[p])] for split in SPLITS
    }
    return SplitManifest(
        seed=int(seed),
        kind=kind,
        fractions=fractions,
        patients={s: patients[s] for s in SPLITS},
        volumes=volumes,
        root=str(root_path) if root_path is not None else None,
    )


def patients_of(directory: str | Path) -> dict[str, list[Path]]:
    """Map each ``patient_id`` attr to that patient's .h5 files in ``directory``."""
    by_patient: dict[str, list[Path]] = {}
    for path in list_volumes(directory):
        patient_id = read_attrs(path).get("patient_id")
        if patient_id is None or str(patient_id) == "":
            raise DataError(path, "attr 'patient_id' missing (needed for patient-level splits)")
        by_patient.setdefault(str(patient_id), []).append(path)
    return by_patient
