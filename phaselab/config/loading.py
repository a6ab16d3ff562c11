"""Resolve a config: a preset (YAML shipped in ``presets/``) or a YAML file, then ``--set`` overrides,
each value type-checked against the schema and the whole validated; errors name the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from phaselab.config.schema import ConfigError, SweepConfig
from phaselab.generators import available_phase_sources


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
        checked = {}
        for k, v in value.items():
            if args[0] is int:  # e.g. {4: 0.08} keyed by acceleration; YAML gives ints, --set may give str
                try:
                    k = int(k)
                except (TypeError, ValueError):
                    raise ConfigError(f"{key}: key {k!r} is not an integer") from None
            checked[k if args[0] is int else str(k)] = _check_type(v, args[1], f"{key}.{k}")
        return checked
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
    """Mappings merge key by key; anything else, and an empty mapping (``--set grid.num_acs_at={}``
    clears it), replaces."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and value and isinstance(merged.get(key), dict):
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


def preset_names() -> list[str]:
    """The presets shipped with phaselab (``phaselab/config/presets/<name>.yaml``)."""
    folder = resources.files("phaselab.config") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML ({err})") from err
    if not isinstance(loaded, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    return loaded


def _resolve(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset or YAML file as a plain mapping, its ``preset:`` base merged under it."""
    if name_or_path in seen:
        raise ConfigError(f"config {name_or_path!r}: presets include each other ({' -> '.join(seen)})")
    if name_or_path in preset_names():
        where = f"preset {name_or_path!r}"
        text = (resources.files("phaselab.config") / "presets" / f"{name_or_path}.yaml").read_text()
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(
                f"config {name_or_path!r}: neither a preset ({', '.join(preset_names())}) nor a YAML file"
            )
        where, text = str(path), path.read_text()
    data = _read_yaml(text, where)
    base = data.pop("preset", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{where}: 'preset' must name a preset or a YAML file, got {base!r}")
    return _merge(_resolve(base, (*seen, name_or_path)), data)


def load_config(preset: str | None = "demo", overrides: list[str] = ()) -> SweepConfig:
    """Resolve a preset name or a YAML file path (``preset: <name>`` as its base), then apply ``--set``
    overrides in order; the result is type-checked and validated."""
    data: dict[str, Any] = _resolve(preset) if preset is not None else {}
    for text in overrides:
        data = _merge(data, parse_override(text))
    config = from_dict(SweepConfig, data)
    validate(config)
    return config


def validate(config: SweepConfig) -> None:
    """Checks that need more than one field or a range; raises ConfigError naming the key.

    Whether the data can be read (``data.root``) is checked when a sweep starts, so that a dry run can
    preview a paper-scale preset without its data.
    """

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {what}")

    d, g, t, r = config.data, config.grid, config.train, config.resources
    need(d.size >= 16, "data.size", f"must be >= 16, got {d.size}")
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
    if g.mask == "equispaced":
        need(not g.center_fractions, "grid.center_fractions", "only for mask random/equispaced_fraction")
        for accel, allowed in g.num_acs_at.items():
            need(
                accel in g.accelerations,
                f"grid.num_acs_at.{accel}",
                f"R={accel} is not in grid.accelerations",
            )
            need(
                set(allowed) <= set(g.num_acs),
                f"grid.num_acs_at.{accel}",
                f"{allowed} not all in grid.num_acs",
            )
    else:
        missing = [a for a in g.accelerations if a not in g.center_fractions]
        need(not missing, "grid.center_fractions", f"mask {g.mask!r} needs a centre fraction for R={missing}")
        need(all(0 < f < 1 for f in g.center_fractions.values()), "grid.center_fractions", "in (0, 1)")
        need(not g.num_acs_at, "grid.num_acs_at", "only for mask equispaced (nACS)")
    need(all(0 <= p <= 1 for p in g.real_fraction), "grid.real_fraction", "fractions must be in [0, 1]")
    need(not g.real_only or g.real_fraction, "grid.real_only", "needs grid.real_fraction")
    need(
        not config.scheduler.asha,
        "scheduler.asha",
        "ASHA cannot run on the grid: it would stop R=6 trials for lagging R=2 ones (a harder problem, "
        "not a worse model), and a rerun would train the stopped cells again. It runs in the searches "
        "(phaselab tune-varnet / tune-generator), on one cell at a time",
    )
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
    u = config.complex_unet
    need(0.0 <= u.dropout < 1.0, "complex_unet.dropout", f"must be in [0, 1), got {u.dropout}")
    need(0.0 < t.lr_gamma <= 1.0, "train.lr_gamma", f"must be in (0, 1], got {t.lr_gamma}")
    need(t.weight_decay is None or t.weight_decay >= 0, "train.weight_decay", "must be >= 0 (or null)")
    unknown = sorted(set(config.complex_unet.train) - {f.name for f in dataclasses.fields(config.train)})
    need(not unknown, "complex_unet.train", f"unknown training key(s) {unknown}")
    e = config.evaluation
    need(e.bootstrap == 0 or e.bootstrap >= 2, "evaluation.bootstrap", f"0 or >= 2, got {e.bootstrap}")
    need(e.max_slices is None or e.max_slices >= 2, "evaluation.max_slices", "must be >= 2")
    need(e.realism_slices >= 2, "evaluation.realism_slices", "must be >= 2")
    for name, gen in config.generators.items():
        need(name in known, f"generators.{name}", f"unknown phase source; known: {sorted(known)}")
        need(
            not (gen.registered and gen.checkpoint),
            f"generators.{name}",
            "set registered or checkpoint, not both",
        )
        try:
            generator_settings(name, gen)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"generators.{name}: {err}") from None


def dump_yaml(config: SweepConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def generator_settings(name: str, gen: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model keywords and GeneratorTrainConfig fields of a generator: its recipe, then the preset's
    own ``model`` / ``train`` keys on top. ValueError / TypeError on an unknown recipe or key."""
    from phaselab.generators.recipes import get_recipe
    from phaselab.generators.training import GeneratorTrainConfig

    model, train = dict(gen.model), dict(gen.train)
    if gen.recipe is not None:
        recipe = get_recipe(gen.recipe)
        if recipe.generator != name:
            raise ValueError(f"recipe {gen.recipe!r} is for {recipe.generator!r}, not {name!r}")
        model = {**recipe.model, **model}
        train = recipe.train_config(train)
    GeneratorTrainConfig(**train)  # unknown keys fail here
    return model, train
