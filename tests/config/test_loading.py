"""Config presets (YAML files shipped in the package), YAML files, --set overrides and their errors."""

import pytest

from phaselab.config import ConfigError, SweepConfig, load_config, parse_override, preset_names
from phaselab.content_key import config_hash


def test_presets_resolve_and_validate():
    assert {"demo", "knee", "brain", "tiny"} <= set(preset_names())
    for name in preset_names():
        assert isinstance(load_config(name), SweepConfig)
    demo = load_config("demo")
    assert demo.data.size == 64 and demo.varnet.cascades == 4
    assert demo.grid.num_acs == [4, 8] and demo.grid.accelerations == [4, 6]
    knee = load_config("knee", ["data.root=/data"])
    assert knee.data.size == 256 and knee.varnet.cascades == 12 and knee.grid.num_acs == [16, 26, 31]
    assert knee.grid.seeds == [0, 1, 2] and knee.grid.accelerations == [2, 3, 4, 6]


def test_presets_train_the_varnet_and_the_complex_unet_is_one_override_away():
    for name in preset_names():
        config = load_config(name, ["data.root=/data"])
        assert config.recon.model == "varnet" and config.train.optimizer == "adam"
        assert config.train.lr_gamma == 1.0 and config.train.weight_decay is None
    # a preset's varnet section still loads as before, and the complex U-Net takes the study's settings
    config = load_config(
        "knee",
        [
            "data.root=/data",
            "recon.model=complex_unet",
            "complex_unet={size: large, dropout: 0.4}",
            "train={optimizer: adamw, lr: 4.4e-4, batch_size: 32, lr_gamma: 0.98}",
        ],
    )
    assert config.varnet.cascades == 12 and config.recon.model == "complex_unet"
    assert config.complex_unet.size == "large" and config.complex_unet.dropout == 0.4
    assert config.train.optimizer == "adamw" and config.train.lr == pytest.approx(4.4e-4)
    assert config.train.epochs == 40  # the rest of the preset's train section is kept


def test_overrides_are_typed():
    config = load_config(
        "demo",
        [
            "varnet.cascades=8",
            "grid.accelerations=[4, 8]",
            "train.lr=1e-4",
            "train.grad_clip=1",
            "tracking.uri=http://127.0.0.1:5000",
        ],
    )
    assert config.varnet.cascades == 8
    assert config.grid.accelerations == [4, 8]
    assert config.train.lr == pytest.approx(1e-4)
    assert config.train.grad_clip == 1.0 and isinstance(config.train.grad_clip, float)
    assert config.tracking.uri == "http://127.0.0.1:5000"
    assert parse_override("a.b=[1,2]") == {"a": {"b": [1, 2]}}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("varnet.cascadez=3", "cascadez"),
        ("nosuch.key=1", "nosuch"),
        ("train.lr=fast", "train.lr"),
        ("train.steps=1.5", "train.steps"),
        ("data.kind=liver", "data.kind"),
        ("grid.sources=[gt, nope]", "nope"),
        ("train.bf16=maybe", "train.bf16"),
        ("grid.num_acs=[100]", "grid.num_acs"),
        ("noequals", "KEY=VALUE"),
        ("resources.custom={GPU: 1}", "resources.custom"),
        ("resources.synthesis_custom={fake_gpu: -1}", "resources.synthesis_custom"),
        ("resources.custom={fake_gpu: many}", "resources.custom.fake_gpu"),
        ("resources.synthesis_actors=0", "resources.synthesis_actors"),
        ("recon.model=transformer", "recon.model"),
        ("complex_unet.size=medium", "complex_unet.size"),
        ("complex_unet.dropout=1.0", "complex_unet.dropout"),
        ("train.optimizer=sgd", "train.optimizer"),
        ("train.lr_gamma=0", "train.lr_gamma"),
        ("train.lr_gamma=1.5", "train.lr_gamma"),
        ("train.weight_decay=-0.1", "train.weight_decay"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("demo", [override])


def test_cluster_resources():
    config = load_config(
        "knee",
        [
            "data.root=/mnt/shared/knee",
            "resources.custom={fake_gpu: 1}",
            "resources.synthesis_custom={a10g: 0.5}",
            "resources.synthesis_actors=8",
        ],
    )
    assert config.resources.custom == {"fake_gpu": 1.0}
    assert config.resources.synthesis_custom == {"a10g": 0.5} and config.resources.synthesis_actors == 8
    assert load_config("demo").resources.custom == {}


def test_brain_is_knee_with_brain_data():
    knee, brain = load_config("knee"), load_config("brain")
    assert brain.data.kind == "brain" and brain.name == "brain" and brain.output_dir.endswith("brain")
    for section in ("varnet", "train", "grid", "resources"):
        assert getattr(brain, section) == getattr(knee, section)


def test_tiny_preset_is_the_demo_made_small():
    tiny = load_config("tiny")
    assert tiny.data.size == 32 and tiny.train.steps == 4 and tiny.grid.sources == ["gt"]
    assert tiny.generators["sbdm"].model["image_size"] == 32  # learned sources work at its size
    assert tiny.train.lr == load_config("demo").train.lr  # what it does not set comes from the demo


def test_presets_that_include_each_other_are_refused(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"preset: {b}\n")
    b.write_text(f"preset: {a}\n")
    with pytest.raises(ConfigError, match="include each other"):
        load_config(str(a))


def test_yaml_file_with_preset_base(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("preset: demo\nvarnet:\n  chans: 8\ngrid:\n  seeds: [0, 1]\n")
    config = load_config(str(path))
    assert config.varnet.chans == 8 and config.varnet.cascades == 4 and config.grid.seeds == [0, 1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("varnet: {cascades: 2, colour: red}\n")
    with pytest.raises(ConfigError, match="colour"):
        load_config(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("varnet: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(str(broken))


def test_config_hash_is_stable_and_sensitive():
    a, b = load_config("demo"), load_config("demo")
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(load_config("demo", ["train.steps=7"]))


def test_asha_on_the_grid_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match=r"scheduler.asha: ASHA cannot run on the grid: it would stop R=6"):
        load_config("demo", ["scheduler.asha=true"])


def test_fraction_masks_need_a_centre_fraction_for_every_acceleration():
    config = load_config(
        "demo", ["grid.mask=random", "grid.accelerations=[4, 8]", "grid.center_fractions={4: 0.08, 8: 0.04}"]
    )
    assert config.grid.center_fractions == {4: 0.08, 8: 0.04}  # integer keys, as YAML writes them
    with pytest.raises(
        ConfigError, match=r"grid.center_fractions: mask 'random' needs a centre fraction for R=\[8\]"
    ):
        load_config(
            "demo", ["grid.mask=random", "grid.accelerations=[4, 8]", "grid.center_fractions={4: 0.08}"]
        )
    with pytest.raises(ConfigError, match="grid.mask"):
        load_config("demo", ["grid.mask=spiral"])
    with pytest.raises(ConfigError, match="grid.num_acs_at.3: R=3 is not in grid.accelerations"):
        load_config("demo", ["grid.num_acs_at={3: [4]}"])
    with pytest.raises(ConfigError, match="grid.center_fractions: key 'x' is not an integer"):
        load_config("demo", ["grid.mask=random", "grid.center_fractions={x: 0.1}"])


def test_the_second_studys_presets():
    from phaselab.orchestration.grid import grid_cells
    from phaselab.orchestration.sweep import cell_model, cell_training

    mixing = load_config("mixing")
    g = mixing.grid
    assert g.real_fraction == [0.001, 0.01, 0.05, 0.1, 0.15, 0.2, 1.0] and g.real_only
    assert g.sources == ["phasegen", "sbdm"] and g.accelerations == [4] and g.seeds == [0, 1, 2]
    assert g.mask == "random" and g.center_fractions == {4: 0.08}
    cells = grid_cells(mixing)
    assert {c["model"] for c in cells} == {"varnet", "complex_unet_large"}  # both downstream models
    unet = next(c for c in cells if c["model"] == "complex_unet_large")
    assert cell_model(mixing, unet) == ("complex_unet", {"size": "large", "dropout": 0.1})
    assert cell_training(mixing, unet)["optimizer"] == "adamw" and cell_training(mixing, unet)["lr"] == 4.4e-4
    varnet = next(c for c in cells if c["model"] == "varnet")
    assert (
        cell_training(mixing, varnet)["optimizer"] == "adam" and cell_training(mixing, varnet)["lr"] == 3e-4
    )

    phasegen = load_config("phasegen_knee")
    cells = grid_cells(phasegen)
    assert {(c["acceleration"], c["center_fraction"], c["num_acs"]) for c in cells} == {
        (4, 0.08, 20),
        (8, 0.04, 10),
    }
    assert {c["source"] for c in cells} == {"gt", "phasegen", "smooth"}
    assert {c["model"] for c in cells} == {"complex_unet_small", "complex_unet_large"}
    with pytest.raises(ConfigError, match="complex_unet.train: unknown training key"):
        load_config("phasegen_knee", ["complex_unet.train={optimiser: sgd}"])
