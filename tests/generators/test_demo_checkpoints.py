"""The demo's shipped generator checkpoints (scripts/train_demo_generators.py): found from any working
directory, plain data (weights_only), made for the data the demo preset prepares today, and realistic."""

from pathlib import Path

import pytest
import torch

from phaselab.config import load_config
from phaselab.data.errors import DataError
from phaselab.data.prepare import prepare_dataset
from phaselab.generators import load_phase_source
from phaselab.generators.base import check_checkpoint_data, checkpoint_meta, resolve_checkpoint
from phaselab.generators.realism import check_realism
from phaselab.orchestration.generator_jobs import load_phase_pairs

NAMES = ("sbdm", "gan", "phasegen")
MAX_BYTES = 4_000_000  # "a few MB" each: they are committed


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    return prepare_dataset(load_config("demo").data, tmp_path_factory.mktemp("cache"), log_fn=lambda s: None)


def shipped(name: str) -> Path:
    return resolve_checkpoint(load_config("demo").generators[name].checkpoint)


@pytest.mark.parametrize("name", NAMES)
def test_the_demo_preset_points_at_a_shipped_checkpoint_from_any_directory(name, tmp_path, monkeypatch):
    configured = load_config("demo").generators[name].checkpoint
    assert configured.startswith("phaselab:")
    here = resolve_checkpoint(configured)
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint(configured) == here and here.is_file()
    assert here.stat().st_size <= MAX_BYTES


@pytest.mark.parametrize("name", NAMES)
def test_each_checkpoint_is_plain_data_and_records_the_demo_data_and_settings(name, demo_data):
    payload = torch.load(shipped(name), map_location="cpu", weights_only=True)
    assert payload["name"] == name
    meta = payload["meta"]
    assert meta["data_key"] == demo_data.key  # retrain (the script) when the demo data change
    gen = load_config("demo").generators[name]
    assert meta["model"] == gen.model and meta["train"] == gen.train  # the preset says how it was made
    assert load_phase_source(shipped(name)).name == name


def test_the_phantom_data_key_depends_on_the_config_not_on_when_the_files_were_written(tmp_path):
    config = load_config("tiny").data
    first = prepare_dataset(config, tmp_path / "a", log_fn=lambda s: None)
    second = prepare_dataset(config, tmp_path / "b", log_fn=lambda s: None)
    assert first.key == second.key
    other = prepare_dataset(load_config("tiny", ["data.seed=1"]).data, tmp_path / "c", log_fn=lambda s: None)
    assert other.key != first.key


def test_a_checkpoint_made_for_other_data_is_refused_naming_the_file(demo_data, tmp_path):
    path = shipped("gan")
    check_checkpoint_data(path, demo_data.key)  # the demo's own data: fine
    with pytest.raises(DataError, match="trained on prepared data") as err:
        check_checkpoint_data(path, "0123456789ab")
    assert str(path) in str(err.value) and "0123456789ab" in str(err.value)
    plain = load_phase_source(path)
    plain.save(tmp_path / "no_meta.pt")  # a checkpoint that records nothing is not checked
    assert checkpoint_meta(tmp_path / "no_meta.pt") == {}
    check_checkpoint_data(tmp_path / "no_meta.pt", "0123456789ab")


@pytest.mark.parametrize("name", ["gan", "phasegen"])
def test_shipped_generators_pass_the_realism_check_on_demo_genval(name, demo_data):
    torch.set_num_threads(1)
    pairs = load_phase_pairs(demo_data.files("genVal"))
    report = check_realism(load_phase_source(shipped(name)), pairs.magnitude, pairs.phase, max_slices=None)
    assert report.realistic, report.summary()
    assert report.score < 1.0, report.summary()


@pytest.mark.slow
def test_shipped_sbdm_passes_the_realism_check_on_demo_genval(demo_data):
    torch.set_num_threads(1)
    pairs = load_phase_pairs(demo_data.files("genVal"))
    report = check_realism(load_phase_source(shipped("sbdm")), pairs.magnitude, pairs.phase, max_slices=None)
    assert report.realistic and report.score < 1.0, report.summary()


def test_a_sweep_on_other_data_refuses_the_demo_checkpoint_before_using_it(tmp_path):
    from types import SimpleNamespace

    from phaselab.orchestration.generator_runs import generator_checkpoint

    config = load_config("demo", [f"output_dir={tmp_path}"])
    ctx = SimpleNamespace(config=config, prepared=SimpleNamespace(key="0123456789ab"), cache=tmp_path)
    with pytest.raises(DataError, match="trained on prepared data") as err:
        generator_checkpoint(ctx, "phasegen", log_fn=lambda line: None)
    assert str(shipped("phasegen")) in str(err.value)
