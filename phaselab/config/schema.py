"""The sweep config as typed dataclasses: one section per concern, defaults of the paper-scale study."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


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
class ReconConfig:
    """Which reconstruction network every grid cell trains: ``varnet`` (the first study's, settings in
    the ``varnet`` section) or ``complex_unet`` (PhaseGen's, settings in the ``complex_unet`` section)."""

    model: Literal["varnet", "complex_unet"] = "varnet"


@dataclass
class VarNetModelConfig:
    cascades: int = 12
    chans: int = 18
    pools: int = 4


@dataclass
class ComplexUNetModelConfig:
    """PhaseGen's complex residual U-Net: ``small`` (~209k parameters) or ``large`` (~3.3M); dropout in
    its encoder (the study: 0.1 or 0.4). Its optimizer settings are in ``train`` (the study: adamw,
    lr_gamma < 1)."""

    size: Literal["small", "large"] = "small"
    dropout: float = 0.1
    # training keys for cells that train this network (on top of the `train` section), e.g. the study's
    # {optimizer: adamw, lr: 4.4e-4, lr_gamma: ...}: one grid can compare it with the VarNet
    train: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingConfig:
    lr: float = 3e-4
    batch_size: int = 4
    steps: int = 2000
    eval_every: int = 200  # steps between validation/checkpoint ("epochs" in MLflow and Tune)
    epochs: float | None = None  # passes over recTrain; sets steps (a preset means the same at any scale)
    eval_every_epochs: float | None = None  # sets eval_every
    bf16: bool = False  # bf16 autocast; CUDA only
    grad_clip: float | None = None
    # rotate each training slice by a random global phase (an augmentation in neither study; it makes the
    # `zero` source constant-phase data): off in the paper presets, on in the demo (see README)
    random_global_phase: bool = False
    optimizer: Literal["adam", "adamw"] = "adam"  # the VarNet: adam; PhaseGen's complex U-Net: adamw
    weight_decay: float | None = None  # None: the optimizer's default (adam 0, adamw 0.01)
    lr_gamma: float = 1.0  # lr x lr_gamma after every pass over recTrain (exponential decay; 1: constant)


@dataclass
class GridConfig:
    sources: list[str] = field(default_factory=lambda: ["gt", "zero", "iid_gaussian", "smooth", "sinusoid"])
    accelerations: list[int] = field(default_factory=lambda: [2, 3, 4, 6])
    num_acs: list[int] = field(default_factory=lambda: [16, 26, 31])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # VarNet seed = phase synthesis draw
    # equispaced: exactly nACS centre lines (the first study); random / equispaced_fraction: fastMRI's
    # RandomMaskFunc / EquispacedMaskFractionFunc with grid.center_fractions (the second study: random)
    mask: Literal["equispaced", "equispaced_fraction", "random"] = "equispaced"
    center_fractions: dict[int, float] = field(default_factory=dict)  # R -> centre fraction (fraction masks)
    num_acs_at: dict[int, list[int]] = field(default_factory=dict)  # R -> the nACS run at it (default: all)
    # real/synthetic mixing (the second study's Table III): a p share of recTrain patients keeps the acquired
    # phase, the rest takes each source's; p = 0 is the source's own cell and p = 1 the gt cell
    real_fraction: list[float] = field(default_factory=list)
    real_only: bool = False  # the control: the same p share of real patients alone, as many steps
    # an axis over reconstruction networks (empty: recon.model only): varnet, complex_unet_small/_large
    models: list[Literal["varnet", "complex_unet_small", "complex_unet_large"]] = field(default_factory=list)


@dataclass
class ResourcesConfig:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions pack several small trials on one GPU
    workers_per_trial: int = 1  # >1 runs the trial under Ray Train (DDP)
    max_concurrent_trials: int | None = None
    torch_threads: int = 1  # intra-op threads per trial
    synthesis_cpus: float = 0.5  # per Ray Data actor
    # Ray Data actors synthesizing in parallel; auto: one per GPU (or per synthesis_custom unit) in the
    # cluster when synthesis runs on GPUs, else 1 (on CPUs the trials need the cores)
    synthesis_actors: int | Literal["auto"] = "auto"
    # Extra Ray resources per trial / per synthesis actor, e.g. {"fake_gpu": 1}, or a node type's label
    # resource to pin work to it; they must exist on some node (ray start --resources=...).
    custom: dict[str, float] = field(default_factory=dict)
    synthesis_custom: dict[str, float] = field(default_factory=dict)
    # The grid's stages per source at once, each source's trials starting when its k-space is ready;
    # auto: when trials take GPUs or the cluster has some (stages and trials on their own hardware).
    # On CPUs only every stage competes with the trials for the same cores, and the stages one after
    # another measured faster (README, "A pipelined study")
    pipeline: bool | Literal["auto"] = "auto"


@dataclass
class EvaluationConfig:
    """How the phase of every source is scored against the acquired phase (on recTrain)."""

    bootstrap: int = 200  # resamples for the 95% intervals (0: none)
    max_slices: int | None = 512  # evenly spaced slices scored (None: all); KID costs ~11 s per 1000
    fid_weights: str | None = None  # local Inception weights file (pt_inception-2015-12-05); None: no FID
    realism_slices: int = 64  # genVal slices a trained generator is sampled on for its realism check


@dataclass
class TrackingConfig:
    uri: str | None = None  # None: sqlite file under output_dir
    experiment: str = "phaselab-recon-grid"


@dataclass
class SchedulerConfig:
    """ASHA of the hyperparameter searches (never of the grid)."""

    asha: bool = False  # refused for the grid: see config validation
    grace_period: int = 2  # evaluations before ASHA may stop a trial
    reduction_factor: int = 3


@dataclass
class GeneratorConfig:
    """How the grid gets one learned phase source: train it here, a registered model, or a saved file."""

    recipe: str | None = None  # a published training recipe (phaselab.generators.recipes), e.g. sbdm-knee-v1
    model: dict[str, Any] = field(default_factory=dict)  # the phase source's constructor keywords (on top)
    train: dict[str, Any] = field(default_factory=dict)  # GeneratorTrainConfig fields (on top of the recipe)
    workers: int = 1  # Ray Train workers (DDP); GPUs when resources.gpus_per_trial > 0
    registered: str | None = None  # "model-name" or "model-name/version" in the MLflow registry
    # a saved generator file to use instead of training one: a path (relative: to the working directory) or
    # phaselab:<path inside the package> (the shipped demo checkpoints); refused when it records other data
    checkpoint: str | None = None
    # a generator whose samples are farther from the acquired phase than `smooth` is refused unless true
    allow_unrealistic: bool = False


@dataclass
class SweepConfig:
    name: str = "demo"
    output_dir: str = "phaselab_runs/demo"
    ray_address: str | None = None  # None: start Ray locally; "auto": join a running cluster
    # with ray_address: ship this working tree to every worker (Ray's runtime_env working_dir, without
    # .venv, .git, caches and outputs), so `ray submit` runs the code you have; false: the nodes' own copy
    ship_working_tree: bool = True
    storage_path: str | None = None  # Ray results; None: <output_dir>/ray_results
    data: DataConfig = field(default_factory=DataConfig)
    recon: ReconConfig = field(default_factory=ReconConfig)
    varnet: VarNetModelConfig = field(default_factory=VarNetModelConfig)
    complex_unet: ComplexUNetModelConfig = field(default_factory=ComplexUNetModelConfig)
    train: TrainingConfig = field(default_factory=TrainingConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    generators: dict[str, GeneratorConfig] = field(default_factory=dict)
