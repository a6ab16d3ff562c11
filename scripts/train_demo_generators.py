"""Train the demo's learned phase generators (sbdm, gan, phasegen) into the shipped checkpoints, and
measure their realism.

    python scripts/train_demo_generators.py [sbdm gan phasegen] [--threads 1]   # train, check, write
    python scripts/train_demo_generators.py --check-only [--threads 1]          # check what is shipped

Uses the project's own pieces only: the demo preset's data (``prepare_dataset``), its ``generators.<name>``
``model`` / ``train`` settings (the preset documents why they differ from the in-sweep defaults), the
shared loop (``train_generator``: validated on genVal, best state kept) and ``PhaseSource.save``. Each
generator gives ``<out>/<name>.pt`` (``phaselab.generators.load_phase_source`` reads it; its ``meta``
records the data key, the preset's settings and the command) and ``<out>/<name>.json`` (the same, the
validation history and the realism checks). Same code, data and settings give the same weights on the
same machine (seeded data order, noise and initialization).

The realism check (``phaselab.generators.realism.check_realism``: the samples against the acquired phase,
beside the ``smooth`` baseline's, on the weight-free distances) runs on genVal and recTrain of the demo
phantoms and on the real brain slice in tests/data/gpunufft_brain4ch (4 coils, SVD-combined into one
virtual coil, Fourier-resized to the demo's size; one slice, so it is drawn ``BRAIN_DRAWS`` times with
different seeds against that many copies of its acquired phase: the distances need >= 2 items a set).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's phaselab, whatever the working directory

from phaselab.config import load_config  # noqa: E402
from phaselab.data.prepare import prepare_dataset  # noqa: E402
from phaselab.generators import create_phase_source, load_phase_source  # noqa: E402
from phaselab.generators.base import checkpoint_meta  # noqa: E402
from phaselab.generators.realism import check_realism  # noqa: E402
from phaselab.generators.training import GeneratorTrainConfig, PhasePairs, train_generator  # noqa: E402
from phaselab.mri.metrics import phase_gradient_stats  # noqa: E402
from phaselab.orchestration.generator_jobs import load_phase_pairs  # noqa: E402

NAMES = ("sbdm", "gan", "phasegen")
OUT = REPO / "phaselab" / "generators" / "demo_checkpoints"
BRAIN = REPO / "tests" / "data" / "gpunufft_brain4ch" / "img_brain_4ch.mat"
BRAIN_DRAWS = 8


def brain_slice(size: int) -> PhasePairs:
    """The real brain slice at ``size``: coil images -> SVD virtual coil -> Fourier resize."""
    import scipy.io

    from phaselab.data.coils import compress_coils
    from phaselab.mri.fft import fft2c, ifft2c
    from phaselab.mri.geometry import fourier_resize

    img = scipy.io.loadmat(BRAIN)["img"].transpose(2, 0, 1)[None]  # (1, 4, 256, 256) complex coil images
    virtual, _ = compress_coils(fft2c(torch.from_numpy(img.copy()).to(torch.complex64)), "svd")
    image = fourier_resize(ifft2c(virtual)[:, 0] if virtual.ndim == 4 else ifft2c(virtual), size)
    return PhasePairs(image.abs().float(), torch.angle(image).float())


def realism(source, pairs: PhasePairs, label: str) -> dict:
    """The realism check on every slice of ``pairs``, with the samples' phase statistics."""
    began = time.perf_counter()
    report = check_realism(source, pairs.magnitude, pairs.phase, max_slices=None)
    seconds = time.perf_counter() - began
    print(f"  [{label}] {report.summary()}", flush=True)
    n = min(16, pairs.magnitude.shape[0])
    sample = source.sample(pairs.magnitude[:n], seed=list(range(n)))
    stats = phase_gradient_stats(sample.numpy(), pairs.magnitude[:n].numpy())
    truth = phase_gradient_stats(pairs.phase[:n].numpy(), pairs.magnitude[:n].numpy())
    return {
        **report.as_dict(),
        "worse": list(report.worse),
        "seconds": round(seconds, 2),
        "phase_std": stats["phase_std"],
        "gradient_median": stats["gradient_median"],
        "true_phase_std": truth["phase_std"],
        "true_gradient_median": truth["gradient_median"],
    }


def check_all(source, splits: dict[str, PhasePairs]) -> dict:
    return {label: realism(source, pairs, label) for label, pairs in splits.items()}


def evaluation_sets(prepared, size: int) -> dict[str, PhasePairs]:
    brain = brain_slice(size)
    repeat = PhasePairs(
        brain.magnitude.expand(BRAIN_DRAWS, -1, -1).contiguous(),
        brain.phase.expand(BRAIN_DRAWS, -1, -1).contiguous(),
    )
    return {
        "genVal": load_phase_pairs(prepared.files("genVal")),
        "recTrain": load_phase_pairs(prepared.files("recTrain")),
        "brain": repeat,
    }


def table(results: dict[str, dict]) -> str:
    """Markdown: generator x data set -> verdict, score and the distances worse than smooth's."""
    lines = ["| generator | data | verdict | score | worse than smooth on | phase std / gradient (true) |"]
    lines.append("|---|---|---|---|---|---|")
    for name, checks in results.items():
        for label, r in checks.items():
            verdict = "pass" if r["realistic"] else "FAIL"
            worse = ", ".join(r["worse"]) or "none"
            stats = (
                f"{r['phase_std']:.2f} / {r['gradient_median']:.3f} "
                f"({r['true_phase_std']:.2f} / {r['true_gradient_median']:.3f})"
            )
            lines.append(f"| {name} | {label} | {verdict} | {r['score']:.3f} | {worse} | {stats} |")
    return "\n".join(lines)


def train_one(name: str, config, prepared, args, argv: list[str]) -> Path:
    gen = config.generators[name]
    train = load_phase_pairs(prepared.files("genTrain"))
    val = load_phase_pairs(prepared.files("genVal"))
    cfg = GeneratorTrainConfig(**{"device": "cpu", **gen.train})
    torch.manual_seed(cfg.seed)  # gan/phasegen initialize from the global generator: not from what ran before
    source = create_phase_source(name, **gen.model)
    print(f"{name}: {source.num_parameters():,} parameters, {cfg.steps} steps", flush=True)
    result = train_generator(source, train, val, cfg, log=lambda line: print(f"  {name}: {line}", flush=True))
    source.load_state_dict(result.best_state)
    best = min(result.history, key=lambda h: h.get("val_loss", float("inf")))
    meta = {
        "data_key": prepared.key,
        "preset": args.preset,
        "overrides": args.overrides,
        "model": dict(gen.model),
        "train": dict(gen.train),
        "train_seconds": round(result.seconds, 1),
        "best_step": best.get("step"),
        "best_val_loss": result.best_val_loss,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "command": "python scripts/train_demo_generators.py " + " ".join(argv),
    }
    path = source.save(args.out / f"{name}.pt", meta=meta)
    record = {"name": name, **meta, "parameters": source.num_parameters(), "history": result.history}
    record["checkpoint_bytes"] = path.stat().st_size
    path.with_suffix(".json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB, {result.seconds:.0f} s)", flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(NAMES), help="generators (default: all three)")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="config override")
    parser.add_argument("--out", type=Path, default=OUT, help=f"checkpoint folder (default {OUT})")
    parser.add_argument("--cache", type=Path, default=None, help="data cache (default: the preset's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--check-only", action="store_true", help="check the checkpoints, train nothing")
    parser.add_argument("--no-check", action="store_true", help="train only")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(NAMES)
    if unknown:
        parser.error(f"unknown generator(s) {sorted(unknown)}; choose from {', '.join(NAMES)}")
    if args.threads:
        torch.set_num_threads(args.threads)

    config = load_config(args.preset, args.overrides)
    cache = args.cache or Path(config.output_dir) / "cache"
    prepared = prepare_dataset(config.data, cache, log_fn=print)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in prepared.splits.items())
    print(f"data {prepared.key} ({args.preset}): {sizes}")
    results = {}
    for name in args.names:
        if name not in config.generators:
            print(f"{name}: no generators.{name} in preset {args.preset!r}, skipped")
            continue
        path = args.out / f"{name}.pt" if args.check_only else train_one(name, config, prepared, args, argv)
        if args.no_check:
            continue
        meta = checkpoint_meta(path)
        print(f"{name}: checking {path} (trained on data {meta.get('data_key')})", flush=True)
        source = load_phase_source(path)
        results[name] = check_all(source, evaluation_sets(prepared, config.data.size))
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            record = json.loads(sidecar.read_text())
            record["realism"] = results[name]
            sidecar.write_text(json.dumps(record, indent=1, default=str) + "\n")
    if results:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
