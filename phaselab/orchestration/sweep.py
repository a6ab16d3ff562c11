"""What every sweep sets up before its trials: the MLflow parent run, Ray and the prepared, split data.

A sweep's key is a hash of what determines its results, so the same command finds the same parent run,
the same cache folders and the same trial folders again: that is how a killed sweep resumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phaselab.config import SweepConfig, dump_yaml, to_dict
from phaselab.content_key import config_hash
from phaselab.data.prepare import PreparedDataset, check_data_source, prepare_dataset
from phaselab.generators import phase_source_class
from phaselab.orchestration.ray_runtime import init_ray
from phaselab.orchestration.trial import TrialSpec
from phaselab.tracking import Tracker, default_tracking_uri, flatten

COMMANDS = {"grid": "phaselab grid", "varnet-search": "phaselab tune-varnet"}


def describe_sweep(config: SweepConfig, kind: str, key: str) -> str:
    """The parent run's description in the MLflow UI: what the sweep is and how to rerun it."""
    g = config.grid
    data = config.data
    where = f"{data.kind} phantoms" if data.source == "phantoms" else f"fastMRI {data.kind} ({data.root})"
    lines = [
        f"**{kind}** of preset `{config.name}` (content key `{key}`) on {where} at {data.size} px.",
        f"Sources {', '.join(g.sources)}; R {g.accelerations}; nACS {g.num_acs}; seeds {g.seeds}; "
        f"{g.mask} masks" + (f"; real share {g.real_fraction}" if g.real_fraction else "") + ".",
        f"Rerun or resume: `{COMMANDS.get(kind, 'phaselab ' + kind)} --config {config.name} "
        f"--output-dir {config.output_dir}` (the resolved config is the artifact config.yaml).",
    ]
    return "\n\n".join(lines)


def cell_model(config: SweepConfig, cell: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The network a cell trains and the complex U-Net's settings: the cell's ``model`` (the grid's
    models axis: varnet, complex_unet_small, complex_unet_large), else ``recon.model``."""
    unet = {k: v for k, v in dataclasses.asdict(config.complex_unet).items() if k != "train"}
    model = cell.get("model", config.recon.model)
    if model.startswith("complex_unet_"):
        return "complex_unet", {**unet, "size": model.removeprefix("complex_unet_")}
    return model, unet


def cell_training(config: SweepConfig, cell: dict[str, Any]) -> dict[str, Any]:
    """The `train` section, with ``complex_unet.train`` on top for cells that train the complex U-Net."""
    train = dataclasses.asdict(config.train)
    if cell_model(config, cell)[0] == "complex_unet":
        train.update(config.complex_unet.train)
    return train


def synthesis_draw(source: str, seed: int) -> int:
    """Which synthesis draw the VarNet of ``seed`` trains on: its own (so the spread over seeds includes
    the generator's sampling variance), except for sources whose phase does not depend on the seed."""
    return seed if phase_source_class(source).stochastic else 0


def sweep_key(config: SweepConfig) -> str:
    """What determines the results: data, models, training and grid (not resources or addresses)."""
    keep = ("data", "recon", "varnet", "complex_unet", "train", "grid", "scheduler")
    content = {k: v for k, v in to_dict(config).items() if k in keep}
    content["generators"] = {
        k: v for k, v in to_dict(config)["generators"].items() if k in config.grid.sources
    }
    return config_hash(content)


@dataclass
class SweepContext:
    config: SweepConfig
    key: str
    sweep_dir: Path
    tracker: Tracker
    tracking_uri: str
    parent_id: str
    resolved: str  # the resolved config as YAML
    prepared: PreparedDataset
    # source -> synthesis draw -> split -> shards (see synthesis_draw)
    shards: dict[str, dict[int, dict[str, list[str]]]] = field(default_factory=dict)

    @property
    def cache(self) -> Path:
        return Path(self.config.output_dir).resolve() / "cache"

    @property
    def storage(self) -> Path | str:
        """Ray results: the configured shared storage, else the sweep folder."""
        return self.config.storage_path or self.sweep_dir / "ray_results"


def open_sweep(
    config: SweepConfig,
    log_fn: Callable[[str], None],
    *,
    kind: str = "grid",
    key_extra: dict | None = None,
) -> SweepContext:
    """Find or create the parent run, start Ray, prepare and split the data.

    The data source is checked before anything is logged, so a wrong ``--data-root`` leaves no run.
    """
    check_data_source(config.data)
    out = Path(config.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    key = sweep_key(config) if key_extra is None else config_hash({"sweep": sweep_key(config), **key_extra})
    uri = config.tracking.uri or default_tracking_uri(out)
    tracker = Tracker(uri, config.tracking.experiment, artifact_root=out / "mlartifacts")
    tags = {"phaselab.preset": config.name, "phaselab.kind": kind}
    parent_id, resumed = tracker.parent_run(key, f"{config.name}-{kind}", tags=tags)
    log_fn(f"{'resuming' if resumed else 'starting'} {kind} {config.name} ({key}); MLflow run {parent_id}")
    with tracker.closed_on_error(parent_id):  # bad data, Ctrl-C...: the parent run is not left RUNNING
        resolved = dump_yaml(config)
        tracker.log_text(parent_id, resolved, "config.yaml")
        tracker.log_params(parent_id, flatten({**to_dict(config), "search": key_extra or {}}))
        tracker.set_tags(parent_id, {"mlflow.source.name": COMMANDS.get(kind, f"phaselab {kind}")})
        tracker.describe_run(parent_id, describe_sweep(config, kind, key))
        tracker.describe_experiment(
            "phaselab: which phase generator makes the best reconstruction models. One parent run per "
            "sweep (its grid, tables and figures as artifacts), one child run per trial, per phase "
            "source's phase metrics and per generator. Made by `phaselab grid` and friends."
        )

        prepared = prepare_dataset(config.data, out / "cache", log_fn=log_fn)  # bad input fails before Ray
        log_fn(f"dataset {prepared.key}: " + ", ".join(f"{s} {len(f)}" for s, f in prepared.splits.items()))
        init_ray(config.ray_address, log_fn)
        ctx = SweepContext(config, key, out / "sweeps" / key, tracker, uri, parent_id, resolved, prepared)
    return ctx


def trial_spec(
    ctx: SweepContext,
    cell: dict[str, Any],
    trial_dir: Path,
    *,
    with_test: bool = True,
    shards: tuple[list[str], list[str], list[str] | None] | None = None,
) -> TrialSpec:
    """The plain-data description of one reconstruction trial of this sweep. ``shards`` (train, val, the
    shards whose slices make an epoch) replaces the source's own, e.g. for real/synthetic mixing."""
    config = ctx.config
    if shards is None:
        own = ctx.shards[cell["source"]][synthesis_draw(cell["source"], cell["seed"])]
        shards = (own["recTrain"], own["recVal"], None)
    train_shards, val_shards, length_shards = shards
    return TrialSpec(
        cell=cell,
        trial_key=config_hash({"sweep": ctx.key, "cell": cell}),
        trial_dir=str(trial_dir),
        train_shards=train_shards,
        val_shards=val_shards,
        test_files=[str(p) for p in ctx.prepared.files("recTest")] if with_test else [],
        varnet=dataclasses.asdict(config.varnet),
        train=cell_training(config, cell),
        tracking_uri=ctx.tracking_uri,
        experiment=config.tracking.experiment,
        parent_run_id=ctx.parent_id,
        resolved_config=ctx.resolved,
        torch_threads=config.resources.torch_threads,
        mask=config.grid.mask,
        length_shards=length_shards,
        model=cell_model(config, cell)[0],
        complex_unet=cell_model(config, cell)[1],
    )
