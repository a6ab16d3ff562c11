import json
from pathlib import Path

import h5py
import pytest

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import write_volume
from phaselab.data.splits import (
    PARTS,
    PRESETS,
    REC_SPLITS,
    SPLITS,
    SplitManifest,
    patients_of,
    split_patients,
)

from .conftest import random_kspace


def _patients(n: int) -> dict[str, list[Path]]:
    # 1 to 3 volumes per patient, as in real archives
    return {f"pat{i:04d}": [Path(f"/data/pat{i:04d}_{v}.h5") for v in range(1 + i % 3)] for i in range(n)}


def test_splits_are_disjoint_by_patient_and_gen_test_is_the_rec_union():
    patient_files = _patients(60)
    manifest = split_patients(patient_files, seed=3)
    assert manifest.split_names() == list(SPLITS)
    drawn = [p for part in PARTS for p in manifest.patients[part]]
    assert sorted(drawn) == sorted(patient_files)  # every patient exactly once
    assert manifest.patients["genTest"] == sorted(p for s in REC_SPLITS for p in manifest.patients[s])
    assert not set(manifest.patients["genTest"]) & set(
        manifest.patients["genTrain"] + manifest.patients["genVal"]
    )
    for split in SPLITS:
        expected = [str(f) for p in manifest.patients[split] for f in patient_files[p]]
        assert manifest.volumes[split] == expected
        assert manifest.files(split) == [Path(f) for f in expected]
    assert all(len(manifest.patients[s]) >= 1 for s in SPLITS)


@pytest.mark.parametrize(
    ("kind", "counts"),
    [
        (
            "knee",
            {"genTrain": 330, "genVal": 30, "genTest": 196, "recTrain": 126, "recVal": 30, "recTest": 40},
        ),
        (
            "brain",
            {"genTrain": 1928, "genVal": 149, "genTest": 1024, "recTrain": 729, "recVal": 99, "recTest": 196},
        ),
    ],
)
def test_presets_reproduce_the_study_patient_counts(kind, counts):
    manifest = split_patients({f"p{i}": [] for i in range(sum(counts[p] for p in PARTS))}, seed=0, kind=kind)
    assert {s: len(manifest.patients[s]) for s in SPLITS} == counts
    assert manifest.kind == kind and manifest.fractions == PRESETS[kind]


def test_deterministic_from_seed():
    a, b, c = (split_patients(_patients(40), seed=s) for s in (1, 1, 2))
    assert a == b
    assert a.patients != c.patients


@pytest.mark.parametrize("n", [5, 6, 7, 9, 12])
def test_few_patients_still_fill_every_split(n):
    manifest = split_patients(_patients(n), seed=0)
    sizes = [len(manifest.patients[p]) for p in PARTS]
    assert min(sizes) >= 1 and sum(sizes) == n


def test_too_few_patients_says_how_many_are_needed():
    with pytest.raises(ValueError, match="need at least 5 patients .* got 4"):
        split_patients(_patients(4), seed=0)


def test_custom_fractions_and_validation():
    fractions = {
        "genTrain": 0.5,
        "genVal": 0.1,
        "genTest": 0.4,
        "recTrain": 0.2,
        "recVal": 0.1,
        "recTest": 0.1,
    }
    manifest = split_patients(_patients(100), seed=0, fractions=fractions)
    assert [len(manifest.patients[s]) for s in SPLITS] == [50, 10, 40, 20, 10, 10]
    with pytest.raises(ValueError, match="genTest"):
        split_patients(_patients(100), seed=0, fractions={**fractions, "genTest": 0.3})
    with pytest.raises(ValueError, match="sum to 1"):
        split_patients(_patients(100), seed=0, fractions={**fractions, "genTrain": 0.6})
    with pytest.raises(ValueError, match="must name"):
        split_patients(_patients(100), seed=0, fractions={"genTrain": 1.0})
    with pytest.raises(ValueError, match="unknown split preset 'spine'"):
        split_patients(_patients(100), seed=0, kind="spine")


def test_json_round_trip_with_root(tmp_path):
    root = tmp_path / "vols"
    patient_files = {f"p{i}": [root / f"p{i}.h5"] for i in range(8)}
    manifest = split_patients(patient_files, seed=5, root=root)
    assert manifest.root == str(root.resolve())
    assert all(not Path(f).is_absolute() for s in SPLITS for f in manifest.volumes[s])
    path = manifest.to_json(tmp_path / "out" / "splits.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["splits.json"]
    loaded = SplitManifest.from_json(path)
    assert loaded == manifest
    assert sorted(f for s in PARTS for f in loaded.files(s)) == sorted(
        f.resolve() for v in patient_files.values() for f in v
    )
    assert json.loads(path.read_text())["seed"] == 5


def test_from_json_rejects_bad_files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="bad.json: not a readable split manifest"):
        SplitManifest.from_json(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(
        json.dumps({"seed": 0, "kind": "knee", "fractions": {}, "patients": {}, "volumes": {}})
    )
    with pytest.raises(DataError, match="partial.json: split manifest lacks splits"):
        SplitManifest.from_json(tmp_path / "partial.json")


def test_patients_of_groups_volumes_by_patient_attr(tmp_path):
    for name, patient in [("a.h5", "p1"), ("b.h5", "p2"), ("c.h5", "p1")]:
        write_volume(tmp_path / name, random_kspace((1, 4, 4)), patient_id=patient)
    assert patients_of(tmp_path) == {"p1": [tmp_path / "a.h5", tmp_path / "c.h5"], "p2": [tmp_path / "b.h5"]}
    with h5py.File(tmp_path / "d.h5", "w") as hf:
        hf.create_dataset("kspace", data=random_kspace((1, 4, 4)))
    with pytest.raises(DataError, match="d.h5: attr 'patient_id' missing"):
        patients_of(tmp_path)
