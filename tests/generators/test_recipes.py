"""The published training recipes: their values, lengths in epochs, early stopping, presets that use them."""

import math

import pytest

from phaselab.config import ConfigError, generator_settings, load_config
from phaselab.data.batching import epochs_to_steps, steps_per_epoch
from phaselab.generators.recipes import RECIPES, get_recipe
from phaselab.generators.training import GeneratorTrainConfig, resolve_lengths, train_generator

from .test_training import Regressor, _pairs


def test_published_values():
    sbdm = get_recipe("sbdm-knee-v1").train
    assert (sbdm["epochs"], sbdm["batch_size"], sbdm["lr"], sbdm["warmup_steps"]) == (60, 12, 1e-4, 5000)
    assert sbdm["ema_decay"] == 0.999 and sbdm["grad_clip"] == 1.0
    assert get_recipe("sbdm-brain-v1").train["batch_size"] == 32
    gan = get_recipe("gan-pix2pix-v1")
    assert (gan.train["epochs"], gan.train["lr"], gan.train["schedule"]) == (100, 2e-4, "linear_decay")
    assert (gan.model["beta1"], gan.model["beta2"], gan.model["l1_weight"]) == (0.5, 0.999, 100.0)
    phasegen = get_recipe("phasegen-v1").train
    assert (phasegen["epochs"], phasegen["batch_size"], phasegen["gamma"]) == (200, 128, 0.995)
    assert phasegen["patience_epochs"] == 30
    for recipe in RECIPES.values():  # every recipe is a valid config and says where it departs from the paper
        GeneratorTrainConfig(**recipe.train)
        assert recipe.reference and all(len(why) > 20 for why in recipe.deviations.values())
    with pytest.raises(ValueError, match="unknown training recipe 'sbdm-v9'"):
        get_recipe("sbdm-v9")


def test_lengths_in_epochs_mean_the_same_at_any_scale():
    cfg = GeneratorTrainConfig(epochs=60, eval_every_epochs=1, batch_size=12)
    knee = resolve_lengths(cfg, 24_854)  # the first study's genTrain (knee)
    demo = resolve_lengths(cfg, 48)  # the demo's genTrain
    assert knee.steps == 60 * math.ceil(24_854 / 12) and knee.eval_every == math.ceil(24_854 / 12)
    assert demo.steps == 60 * 4 and demo.eval_every == 4
    assert epochs_to_steps(0.5, 10, 4) == 2 and steps_per_epoch(10, 4) == 3
    assert resolve_lengths(GeneratorTrainConfig(steps=7), 100).steps == 7  # no epochs: steps as given


def test_early_stopping_after_patience_epochs_without_a_better_validation_loss():
    train, val = _pairs(), _pairs(8, seed=1)
    # a learning rate of 0: the validation loss of the first epoch is never beaten, so patience runs out
    cfg = GeneratorTrainConfig(
        epochs=50, eval_every_epochs=1, patience_epochs=3, batch_size=8, lr=0.0, device="cpu"
    )
    lengths = resolve_lengths(cfg, train.magnitude.shape[0])
    result = train_generator(Regressor(), train, val, cfg)
    best_step = min(result.history, key=lambda h: h["val_loss"])["step"]
    last = result.history[-1]
    assert last.get("stopped_early") == 1.0 and last["step"] < lengths.steps
    assert best_step == lengths.eval_every  # the first evaluation stays the best
    assert last["step"] == best_step + 3 * lengths.eval_every  # stopped after three epochs without better
    assert len(result.history) == 4


def test_presets_take_the_recipes_and_override_single_keys():
    model, train = generator_settings("sbdm", load_config("knee").generators["sbdm"])
    assert train["epochs"] == 60 and train["batch_size"] == 12 and model["image_size"] == 256
    assert generator_settings("sbdm", load_config("brain").generators["sbdm"])[1]["batch_size"] == 32
    _, tiny = generator_settings("gan", load_config("tiny").generators["gan"])
    assert tiny["epochs"] == 2 and tiny["schedule"] == "linear_decay"  # the recipe, scaled down
    with pytest.raises(ConfigError, match="recipe 'gan-pix2pix-v1' is for 'gan', not 'sbdm'"):
        load_config("knee", ["generators.sbdm.recipe=gan-pix2pix-v1"])
    with pytest.raises(ConfigError, match="generators.gan"):
        load_config("knee", ["generators.gan.train.epochz=3"])
