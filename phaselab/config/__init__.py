"""Typed, validated sweep configs: presets as YAML files, ``--set`` overrides, errors that name the key."""

from phaselab.config.loading import (
    dump_yaml,
    from_dict,
    generator_settings,
    load_config,
    parse_override,
    preset_names,
    to_dict,
    validate,
)
from phaselab.config.schema import (
    ConfigError,
    DataConfig,
    EvaluationConfig,
    GeneratorConfig,
    GridConfig,
    ResourcesConfig,
    SchedulerConfig,
    SweepConfig,
    TrackingConfig,
    TrainingConfig,
    VarNetModelConfig,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvaluationConfig",
    "GeneratorConfig",
    "GridConfig",
    "ResourcesConfig",
    "SchedulerConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainingConfig",
    "VarNetModelConfig",
    "dump_yaml",
    "from_dict",
    "generator_settings",
    "load_config",
    "parse_override",
    "preset_names",
    "to_dict",
    "validate",
]
