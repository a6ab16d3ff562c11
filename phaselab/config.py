"""Typed, validated sweep configs: presets (demo, knee, brain), YAML files and ``--set`` overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the key."""


@dataclass
class DataConfig:
    source: Literal["phantoms", "fastmri"] = "phantoms"
    root: str | None = None  # fastMRI directory (source=fastmri) or where phantoms are cached
    kind: Literal["knee", "brain"] = "knee"
    patients: int = 24  # phantoms only
    slices: int = 8  # phantoms only
    size: int = 64  # working size: images are Fourier-resized to size x size
    crop: int = 320  # field of view the image is cropped to before resizing (fastMRI: 320)
    seed: int = 0  # phantom generation seed
    split_seed: int = 0
    fractions: dict[str, float] | None = None  # None: the studies' table for `kind`
    coil_compression: Literal["svd"] = "svd"
    skip_bad_files: bool = False


@dataclass
class VarNetModelConfig:
    cascades: int = 12
    chans: int = 18
    pools: int = 4


@dataclass
class TrainingConfig:
    lr: float = 3e-4
    batch_size: int = 4
    steps: int = 2000
    eval_every: int = 200  # steps between validation/checkpoint ("epochs" in MLflow and Tune)
    bf16: bool = False  # bf16 autocast; CUDA only
    grad_clip: float | None = None


@dataclass
class GridConfig:
    sources: list[str] = field(default_factory=lambda: ["gt", "zero", "iid_gaussian", "smooth", "sinusoid"])
    accelerations: list[int] = field(default_factory=lambda: [2, 3, 4, 6])
    num_acs: list[int] = field(default_factory=lambda: [16, 26, 31])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    mask: Literal["equispaced"] = "equispaced"


@dataclass
class ResourcesConfig:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions pack several small trials on one GPU
    workers_per_trial: int = 1  # >1 runs the trial under Ray Train (DDP)
    max_concurrent_trials: int | None = None
    torch_threads: int = 1  # intra-op threads per trial
    synthesis_cpus: float = 0.5  # per Ray Data actor
    synthesis_actors: int = 1  # Ray Data actors synthesizing in parallel (one per GPU on a cluster)
    # Extra Ray resources per trial / per synthesis actor, e.g. {"fake_gpu": 1}, or a node type's label
    # resource to pin work to it; they must exist on some node (ray start --resources=...).
    custom: dict[str, float] = field(default_factory=dict)
    synthesis_custom: dict[str, float] = field(default_factory=dict)


@dataclass
class TrackingConfig:
    uri: str | None = None  # None: sqlite file under output_dir
    experiment: str = "phaselab-recon-grid"


@dataclass
class SchedulerConfig:
    asha: bool = False
    grace_period: int = 2  # evaluations before ASHA may stop a trial
    reduction_factor: int = 3


@dataclass
class GeneratorConfig:
    """How to obtain one learned phase source for the grid: train it here, or take a registered one."""

    model: dict[str, Any] = field(default_factory=dict)  # the phase source's constructor keywords
    train: dict[str, Any] = field(default_factory=dict)  # GeneratorTrainConfig fields
    workers: int = 1  # Ray Train workers (DDP); GPUs when resources.gpus_per_trial > 0
    registered: str | None = None  # "model-name" or "model-name/version" in the MLflow registry


@dataclass
class SweepConfig:
    name: str = "demo"
    output_dir: str = "phaselab_runs/demo"
    ray_address: str | None = None  # None: start Ray locally; "auto": join a running cluster
    storage_path: str | None = None  # Ray results; None: <output_dir>/ray_results
    data: DataConfig = field(default_factory=DataConfig)
    varnet: VarNetModelConfig = field(default_factory=VarNetModelConfig)
    train: TrainingConfig = field(default_factory=TrainingConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    generators: dict[str, GeneratorConfig] = field(default_factory=dict)


PRESETS: dict[str, dict[str, Any]] = {
    # CPU, minutes: phantoms at 64 px; nACS 4 and 8 at 64 px stand for the studies' 16 and 31 at 256.
    "demo": {
        "name": "demo",
        "output_dir": "phaselab_runs/demo",
        # Few patients at a small size: rec splits get a larger share than the studies' table so that
        # recTrain holds enough volumes to learn from (≈14 of 32 patients).
        "data": {
            "source": "phantoms",
            "kind": "knee",
            "patients": 32,
            "slices": 6,
            "size": 64,
            "fractions": {"genTrain": 0.25, "genVal": 0.05, "recTrain": 0.45, "recVal": 0.1, "recTest": 0.15},
        },
        "varnet": {"cascades": 4, "chans": 16, "pools": 3},
        "train": {"lr": 1e-3, "batch_size": 8, "steps": 150, "eval_every": 75},
        "grid": {"accelerations": [2, 4, 6], "num_acs": [4, 8], "seeds": [0]},
        "resources": {"cpus_per_trial": 1.0, "torch_threads": 1},
        # Tiny learned generators for CPU: add them with --set grid.sources=[gt,zero,smooth,sbdm,gan,phasegen]
        "generators": {
            "sbdm": {
                "model": {
                    "image_size": 64,
                    "nf": 16,
                    "ch_mult": [1, 2, 2],
                    "num_res_blocks": 1,
                    "attn_resolutions": [16],
                    "sigma_max": 50.0,
                    "sampler": "pc",
                    "steps": 100,
                },
                "train": {"steps": 800, "batch_size": 8, "lr": 2e-4, "ema_decay": 0.999, "eval_every": 200},
            },
            "gan": {
                "model": {"size": 64, "ngf": 16, "ndf": 16, "n_layers": 2},
                "train": {
                    "steps": 800,
                    "batch_size": 8,
                    "lr": 2e-4,
                    "schedule": "linear_decay",
                    "eval_every": 200,
                    "grad_clip": None,
                },
            },
            "phasegen": {
                "model": {"features": [8, 16, 32], "blocks": 1, "timesteps": 200, "sample_steps": 50},
                "train": {"steps": 800, "batch_size": 8, "lr": 5e-4, "eval_every": 200},
            },
        },
    },
    "knee": {
        "name": "knee",
        "output_dir": "phaselab_runs/knee",
        "data": {"source": "fastmri", "kind": "knee", "size": 256},
        "varnet": {"cascades": 12, "chans": 18, "pools": 4},
        "train": {"lr": 3e-4, "batch_size": 4, "steps": 50000, "eval_every": 2500, "bf16": True},
        "grid": {
            "sources": ["gt", "zero", "iid_gaussian", "smooth", "sinusoid"],
            "accelerations": [2, 3, 4, 6],
        },
        "resources": {"cpus_per_trial": 4, "gpus_per_trial": 1.0, "torch_threads": 4},
        "scheduler": {"asha": False},
    },
    "brain": {
        "name": "brain",
        "output_dir": "phaselab_runs/brain",
        "data": {"source": "fastmri", "kind": "brain", "size": 256},
        "varnet": {"cascades": 12, "chans": 18, "pools": 4},
        "train": {"lr": 3e-4, "batch_size": 4, "steps": 50000, "eval_every": 2500, "bf16": True},
        "grid": {
            "sources": ["gt", "zero", "iid_gaussian", "smooth", "sinusoid"],
            "accelerations": [2, 3, 4, 6],
        },
        "resources": {"cpus_per_trial": 4, "gpus_per_trial": 1.0, "torch_threads": 4},
    },
}


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """Return ``value`` converted to ``annotation`` where that is lossless, else raise ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            try:
                return _check_type(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: {value!r} is not a valid {_type_name(annotation)}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_check_type(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _check_type(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, key)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {annotation}")


def _type_name(annotation: Any) -> str:
    return str(annotation).replace("typing.", "")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and ill-typed values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in '{prefix}'" if prefix else ""
        raise ConfigError(
            f"unknown config key(s){where}: {', '.join(unknown)} (known: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, key)
        else:
            kwargs[name] = _check_type(value, hint, key)
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """``"varnet.cascades=8"`` -> ``{"varnet": {"cascades": 8}}``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. varnet.cascades=8")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: malformed key {key!r}")
    value: Any = yaml.safe_load(raw) if raw.strip() else None
    for part in reversed(parts):
        value = {part: value}
    return value


def load_config(preset: str | None = "demo", overrides: list[str] = ()) -> SweepConfig:
    """Resolve a preset name or a YAML file path, then apply ``--set`` overrides in order."""
    data: dict[str, Any] = {}
    if preset is not None:
        if preset in PRESETS:
            data = PRESETS[preset]
        else:
            path = Path(preset)
            if not path.is_file():
                raise ConfigError(
                    f"config {preset!r}: neither a preset ({', '.join(PRESETS)}) nor a YAML file"
                )
            try:
                loaded = yaml.safe_load(path.read_text())
            except yaml.YAMLError as err:
                raise ConfigError(f"{path}: not valid YAML ({err})") from err
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: expected a mapping at the top level")
            base = PRESETS.get(loaded.pop("preset", None) or "", {})
            data = _merge(base, loaded)
    for text in overrides:
        data = _merge(data, parse_override(text))
    config = from_dict(SweepConfig, data)
    validate(config)
    return config


def validate(config: SweepConfig) -> None:
    """Checks that need more than one field or a range; raises ConfigError naming the key."""
    from phaselab.generators import available_phase_sources

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {what}")

    d, g, t, r = config.data, config.grid, config.train, config.resources
    need(d.size >= 16, "data.size", f"must be >= 16, got {d.size}")
    need(d.source != "fastmri" or d.root is not None, "data.root", "required when data.source is fastmri")
    need(d.patients >= 6, "data.patients", f"need >= 6 patients for six splits, got {d.patients}")
    need(d.slices >= 1, "data.slices", f"must be >= 1, got {d.slices}")
    known = set(available_phase_sources())
    unknown = [s for s in g.sources if s not in known]
    need(not unknown, "grid.sources", f"unknown phase source(s) {unknown}; known: {sorted(known)}")
    need(
        bool(g.sources) and bool(g.accelerations) and bool(g.num_acs) and bool(g.seeds), "grid", "empty axis"
    )
    need(all(a >= 1 for a in g.accelerations), "grid.accelerations", "must be >= 1")
    need(all(0 < n < d.size for n in g.num_acs), "grid.num_acs", f"must be in (0, data.size={d.size})")
    need(t.lr > 0, "train.lr", "must be > 0")
    need(t.steps >= 1 and t.eval_every >= 1, "train.steps", "steps and eval_every must be >= 1")
    need(t.batch_size >= 1, "train.batch_size", "must be >= 1")
    need(r.cpus_per_trial > 0, "resources.cpus_per_trial", "must be > 0")
    need(r.gpus_per_trial >= 0, "resources.gpus_per_trial", "must be >= 0")
    need(r.workers_per_trial >= 1, "resources.workers_per_trial", "must be >= 1")
    need(r.synthesis_actors >= 1, "resources.synthesis_actors", "must be >= 1")
    for key, extra in (("resources.custom", r.custom), ("resources.synthesis_custom", r.synthesis_custom)):
        builtin = sorted(k for k in extra if k.lower() in ("cpu", "gpu", "memory"))
        need(not builtin, key, f"{builtin} are set by cpus_per_trial/gpus_per_trial, not here")
        need(all(v >= 0 for v in extra.values()), key, "amounts must be >= 0")
    need(
        config.varnet.cascades >= 1 and config.varnet.pools >= 1, "varnet", "cascades and pools must be >= 1"
    )


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable content key of a config (dataclass or JSON-able object)."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def dump_yaml(config: SweepConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
