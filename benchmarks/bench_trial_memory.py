"""Peak memory of a reused trial actor: trials of 1, 2 and 4 sources run one after another in one process,
with the old per-process cache of stacked data sets vs the lazy per-batch reads trials use now.

Each (variant, sources) pair runs in a fresh subprocess (a stand-in for a Tune actor reused across the
grid) that trains a tiny VarNet on each source's synthetic shards and evaluates it on the test volumes;
its peak RSS (``ru_maxrss``) above the RSS after imports is compared with the lazy 1-source figure of the
same run:

    OMP_NUM_THREADS=1 python benchmarks/bench_trial_memory.py --out benchmarks/results/trial_memory_cpu.json

(from a git worktree, prefix PYTHONPATH=. so that the worktree's phaselab is the one measured)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SOURCE_COUNTS = (1, 2, 4)
VARIANTS = ("cached", "lazy")


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def write_shards(root: Path, sources: int, volumes: int, slices: int, size: int) -> dict:
    """Per source: train and val shards (one volume per file, as synthesis writes them); one test set."""
    from phaselab.data.fastmri_io import write_volume

    rng = np.random.default_rng(0)

    def volume(path: Path) -> str:
        kspace = rng.standard_normal((slices, size, size)) + 1j * rng.standard_normal((slices, size, size))
        target = np.abs(np.fft.ifft2(kspace)).astype(np.float32)
        return str(write_volume(path, kspace.astype(np.complex64), patient_id=path.stem, target=target))

    layout: dict = {"sources": [], "test": [volume(root / "test" / f"t{i}.h5") for i in range(2)]}
    for s in range(sources):
        train = [volume(root / f"src{s}" / "train" / f"v{i}.h5") for i in range(volumes)]
        val = [volume(root / f"src{s}" / "val" / f"v{i}.h5") for i in range(max(1, volumes // 8))]
        layout["sources"].append({"train": train, "val": val})
    return layout


def run_actor(variant: str, sources: int, layout_path: str, steps: int) -> dict:
    """One long-lived process running one trial per source, as a reused Tune actor does."""
    import torch

    from phaselab.mri.masks import volume_mask
    from phaselab.orchestration.trial import VolumeFiles
    from phaselab.recon.data import KspaceSlices, ShardSlices, load_slices
    from phaselab.recon.evaluate import evaluate_reconstruction
    from phaselab.recon.train import TrainConfig, VarNetConfig, train_varnet

    torch.set_num_threads(1)
    layout = json.loads(Path(layout_path).read_text())
    cached = functools.lru_cache(maxsize=16)(load_slices)  # the trial's loader before the lazy reads

    def test_volumes(paths: list[str]) -> list:
        slices: KspaceSlices = cached(tuple(paths))
        return [
            (Path(p).stem, slices.kspace[slices.volume == i], slices.target[slices.volume == i])
            for i, p in enumerate(paths)
        ]

    baseline = _rss_mb()
    start = time.perf_counter()
    for source in layout["sources"][:sources]:
        if variant == "cached":
            train, val = cached(tuple(source["train"])), cached(tuple(source["val"]))
            volumes = test_volumes(layout["test"])
        else:
            train, val = ShardSlices(source["train"]), ShardSlices(source["val"])
            volumes = VolumeFiles(layout["test"])
        cfg = TrainConfig(batch_size=4, steps=steps, eval_every=steps, acceleration=4, num_acs=8)
        result = train_varnet(train, val, VarNetConfig(cascades=1, chans=4, pools=2), cfg)
        masks = [volume_mask("equispaced", train.width, 4, Path(p).name, num_acs=8) for p in layout["test"]]
        evaluate_reconstruction(result.model, volumes, masks)
        del train, val, volumes, result
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "variant": variant,
        "sources": sources,
        "rss_after_imports_mb": round(baseline, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_above_imports_mb": round(peak - baseline, 1),
        "seconds": round(time.perf_counter() - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=32, help="train volumes per source")
    parser.add_argument("--slices", type=int, default=10, help="slices per volume")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--actor", nargs=3, metavar=("VARIANT", "SOURCES", "LAYOUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.actor:
        print(json.dumps(run_actor(args.actor[0], int(args.actor[1]), args.actor[2], args.steps)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        layout = write_shards(Path(tmp), max(SOURCE_COUNTS), args.volumes, args.slices, args.size)
        layout_path = Path(tmp) / "layout.json"
        layout_path.write_text(json.dumps(layout))
        # the children import the phaselab this process imports (a worktree's, not the installed one)
        import phaselab

        env = {**os.environ, "PYTHONPATH": str(Path(phaselab.__file__).resolve().parents[1])}
        runs = []
        for variant in VARIANTS:
            for sources in SOURCE_COUNTS:
                command = [sys.executable, __file__, "--steps", str(args.steps)]
                command += ["--actor", variant, str(sources), str(layout_path)]
                out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
                print(json.dumps(runs[-1]))

    def peak(variant: str, sources: int) -> float:
        (run,) = [r for r in runs if (r["variant"], r["sources"]) == (variant, sources)]
        return run["peak_above_imports_mb"]

    source_mb = args.volumes * args.slices * args.size**2 * (8 + 4) / 1024**2  # complex64 k-space + target
    report = {
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared with other jobs; no GPU)",
        "command": "OMP_NUM_THREADS=1 python benchmarks/bench_trial_memory.py "
        f"--volumes {args.volumes} --slices {args.slices} --size {args.size} --steps {args.steps}",
        "train_slices_per_source": args.volumes * args.slices,
        "size": args.size,
        "train_data_per_source_mb": round(source_mb, 1),
        "runs": runs,
        "baseline": "lazy, 1 source: peak RSS above the RSS after imports, in its own fresh process",
        "ratio_vs_lazy_1_source": {
            f"{variant}_{sources}": round(peak(variant, sources) / peak("lazy", 1), 2)
            for variant in VARIANTS
            for sources in SOURCE_COUNTS
        },
        "cached_over_lazy": {str(s): round(peak("cached", s) / peak("lazy", s), 2) for s in SOURCE_COUNTS},
    }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
