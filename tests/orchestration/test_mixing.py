"""Real/synthetic mixing: whole patients, nested shares, the real-only control, Table III on the parent."""

import json
from pathlib import Path

import pytest

from phaselab.config import load_config
from phaselab.data.fastmri_io import read_attrs
from phaselab.orchestration.grid import grid_cells, run_recon_grid
from phaselab.orchestration.mixing import real_patients
from phaselab.orchestration.mixing_report import format_mixing_table
from phaselab.tracking import Tracker


def test_real_patients_are_whole_nested_and_seeded():
    patients = [f"p{i:02d}" for i in range(40)]
    shares = [real_patients(patients, p, seed=3) for p in (0.001, 0.05, 0.2, 0.5, 1.0)]
    assert [len(s) for s in shares] == [1, 2, 8, 20, 40]  # ceil(p x 40): a tiny share still has a patient
    assert all(a <= b for a, b in zip(shares, shares[1:], strict=False))  # a larger p keeps the smaller
    assert real_patients(patients, 0.2, seed=4) != shares[2] and real_patients(patients, 0.0, 3) == set()


def test_mixing_cells_train_nothing_twice():
    config = load_config(
        "tiny", ["grid.sources=[zero, smooth]", "grid.real_fraction=[0, 0.5, 1]", "grid.real_only=true"]
    )
    cells = grid_cells(config)
    mixed = [c for c in cells if "real_fraction" in c]
    assert [c["source"] for c in mixed] == ["zero", "smooth", "gt"] and mixed[-1]["real_only"]
    assert {"source": "gt", "acceleration": 4, "num_acs": 4, "seed": 0} in cells  # p = 1
    assert len(cells) == 6  # zero, smooth (p = 0), their p = 0.5 mixes, the control, gt (p = 1)


@pytest.mark.ray
@pytest.mark.slow  # 30-80 s on 2 cores: out of CI (python -m pytest -m slow)
def test_a_tiny_mixing_grid_logs_table_iii_with_the_child_runs_values(ray_session, tmp_path):
    overrides = [f"output_dir={tmp_path}", "grid.sources=[zero, smooth]", "grid.real_fraction=[0, 0.5, 1]"]
    config = load_config("tiny", [*overrides, "grid.real_only=true", "data.patients=12", "train.steps=2"])
    result = run_recon_grid(config, log_fn=lambda _: None)
    assert len(result.rows) == 6

    specs = {}
    for path in (tmp_path / "trials").glob("*/spec.json"):
        spec = json.loads(path.read_text())
        specs[json.dumps(spec["cell"], sort_keys=True)] = spec
    mixed = next(
        s for s in specs.values() if s["cell"].get("real_fraction") and s["cell"]["source"] == "smooth"
    )
    folders = [Path(p).parent.name.split("-")[1] for p in mixed["train_shards"]]
    patients = {
        str(read_attrs(p)["patient_id"]): f for p, f in zip(mixed["train_shards"], folders, strict=True)
    }
    assert set(folders) == {"gt", "smooth"}  # real patients keep the acquired phase, the rest is synthetic
    assert sum(f == "gt" for f in patients.values()) == pytest.approx(len(patients) / 2, abs=1)
    control = next(s for s in specs.values() if s["cell"].get("real_only"))
    real = {str(read_attrs(p)["patient_id"]) for p in control["train_shards"]}
    assert real == {who for who, f in patients.items() if f == "gt"}  # the same real patients, alone
    assert len(control["length_shards"]) == len(mixed["train_shards"])  # as many steps as the full set

    tracker = Tracker(result.tracking_uri, config.tracking.experiment)
    table = tracker.load_json_artifact(result.parent_run_id, "mixing/table.json")
    by_key = {(e["series"], e["real_fraction"]): e for e in table}
    for row in result.rows:
        cell = row["cell"]
        if cell["source"] == "gt" and not cell.get("real_only"):
            series, p = "smooth", 1.0
        else:
            series = "real only" if cell.get("real_only") else cell["source"]
            p = cell.get("real_fraction", 0.0)
        assert by_key[series, p]["ssim_mean"] == pytest.approx(row["test_ssim"])
    text = format_mixing_table(table)
    assert "| 50% |" in text and "real only SSIM" in text and "smooth PSNR" in text
    names = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "mixing")}
    assert "mixing/ssim_psnr_vs_real_fraction_R4_acs4.png" in names and "mixing/table.md" in names
