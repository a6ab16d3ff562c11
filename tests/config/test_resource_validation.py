"""Resource settings Ray would accept but a trial cannot use are refused, naming the keys."""

import pytest

from phaselab.config import ConfigError, load_config
from phaselab.config.loading import preset_names


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["resources.gpus_per_trial=0.5", "resources.workers_per_trial=2"],
            r"resources.gpus_per_trial with resources.workers_per_trial: a fraction of a GPU \(0.5\)",
        ),
        (["resources.gpus_per_trial=0.3"], r"resources.gpus_per_trial: a fraction of a GPU must be 1/n"),
        (["resources.gpus_per_trial=0.4"], r"resources.gpus_per_trial: a fraction of a GPU must be 1/n"),
        (["resources.gpus_per_trial=2"], r"resources.gpus_per_trial: a trial .* trains on one GPU"),
        (["resources.gpus_per_trial=1.5"], r"resources.gpus_per_trial: a trial .* trains on one GPU"),
        (["resources.max_concurrent_trials=0"], r"resources.max_concurrent_trials: must be >= 1"),
        (["resources.torch_threads=0"], r"resources.torch_threads: must be >= 1"),
        (
            ["resources.workers_per_trial=4", "train.batch_size=2"],
            r"train.batch_size with resources.workers_per_trial: the global batch \(2\)",
        ),
    ],
)
def test_invalid_resources_are_refused_naming_the_keys(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        ["resources.gpus_per_trial=0.5"],
        ["resources.gpus_per_trial=0.25"],
        ["resources.gpus_per_trial=0.333"],  # 1/3 as YAML writes it
        ["resources.gpus_per_trial=0.125"],
        ["resources.gpus_per_trial=1", "resources.workers_per_trial=4", "train.batch_size=4"],
        ["resources.workers_per_trial=2", "train.batch_size=2"],  # DDP on CPU workers
        ["resources.max_concurrent_trials=3"],
    ],
)
def test_valid_resources_load(overrides):
    load_config("tiny", overrides)


@pytest.mark.parametrize("preset", preset_names())
def test_presets_pass_the_resource_checks(preset):
    load_config(preset)
