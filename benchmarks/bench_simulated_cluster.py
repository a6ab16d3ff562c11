"""A simulated large run: many small Ray nodes with fake GPUs on one machine, the knee grid's shape with
tiny models; scheduler overhead per trial and trial-slot utilisation over time against the ideal.

Each node is a raylet of ``ray.cluster_utils.Cluster`` with ``--gpus-per-node`` units of the custom
resource ``fake_gpu`` (one per trial, as a GPU would be) and as many logical CPUs; the head has none, so
nothing runs there. The grid is the knee preset's (sources x R x nACS x seeds, ``num_acs_at``) on the
tiny preset's phantoms (32 px), model and training length (``--steps``). sbdm is replaced by the
sinusoid baseline (a diffusion model would need minutes of CPU to train and sample); gan stays, trained
for two epochs of the tiny recipe and allowed although unrealistic, so the timeline has a generator stage.
The figures are read back from MLflow (the parent run's ``timeline/timeline.json``) and from every
trial's result.json (``began_at``, ``ended_at``, ``train_seconds``) and Tune's own trial records:

    python benchmarks/bench_simulated_cluster.py --nodes 16 --gpus-per-node 4 --steps 2 \
        --out benchmarks/results/simulated_cluster_cpu.json

``--grid smoke`` runs 4 cells instead (a feasibility check before the full grid). On the 2-core, 24 GiB
machine 16 x 4 ran out of memory (64 trial processes); the committed results are
``--nodes 16 --gpus-per-node 1`` and ``--nodes 8 --gpus-per-node 4 --output-dir
phaselab_runs/simulated_cluster_8x4`` (benchmarks/results/simulated_cluster_*_cpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Any

STAGE_KINDS = ("generator", "realism", "synthesis", "phase metrics")


def grid_overrides(grid: str) -> list[str]:
    if grid == "smoke":
        return ["grid.sources=[gt, zero]", "grid.accelerations=[4]", "grid.num_acs=[4]", "grid.seeds=[0, 1]"]
    from phaselab.config import load_config

    knee = load_config("knee").grid
    sources = ["sinusoid" if s == "sbdm" else s for s in knee.sources]
    return [
        f"grid.sources=[{', '.join(sources)}]",
        f"grid.accelerations={list(knee.accelerations)}",
        f"grid.num_acs={list(knee.num_acs)}",
        "grid.num_acs_at={" + ", ".join(f"{r}: {list(n)}" for r, n in knee.num_acs_at.items()) + "}",
        f"grid.seeds={list(knee.seeds)}",
        "generators.gan.allow_unrealistic=true",
    ]


class MemoryWatch(threading.Thread):
    """The machine's lowest available memory and the most Ray worker processes seen during the run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.min_available_gb, self.max_workers, self.stop = float("inf"), 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(3.0):
            self.min_available_gb = min(self.min_available_gb, available_gb())
            self.max_workers = max(self.max_workers, ray_worker_processes())


def available_gb() -> float:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    return next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable")) / 1024**2


def ray_worker_processes() -> int:
    """Processes whose name Ray set to ``ray::...`` (idle workers, trial and synthesis actors)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            count += Path(f"/proc/{pid}/comm").read_text().startswith("ray::")
        except OSError:
            continue  # ended meanwhile
    return count


def tune_trial_seconds(storage: Path) -> dict[str, float]:
    """Tune's wall time of each trial (``time_total_s`` of its last report) by trial key, from Tune's
    result files."""
    seconds = {}
    for path in storage.glob("grid-*/*/result.json"):
        lines = path.read_text().strip().splitlines()
        if lines:
            last = json.loads(lines[-1])
            seconds[last["config"]["cell"]["trial_key"]] = float(last["time_total_s"])
    return seconds


def busy_curve(trials: list[dict[str, float]], end: float, step: float) -> tuple[list[float], list[int]]:
    times = [i * step for i in range(int(end / step) + 2)]
    return times, [sum(t["start"] <= x < t["end"] for t in trials) for x in times]


def figures(summary: dict[str, Any], rows: list[dict[str, Any]], tune_s: dict[str, float]) -> dict[str, Any]:
    slots = summary["slots"]
    trials = [s for s in summary["spans"] if s["kind"] == "trial"]
    spans = [t["end"] - t["start"] for t in trials]
    train = [float(r["train_seconds"]) for r in rows]
    first, last = min(t["start"] for t in trials), max(t["end"] for t in trials)
    starts = sorted(t["start"] for t in trials)
    busy = sum(spans)
    stages = {k: sum(s["end"] - s["start"] for s in summary["spans"] if s["kind"] == k) for k in STAGE_KINDS}

    def med(xs: list[float]) -> float:
        return round(statistics.median(xs), 2) if xs else float("nan")

    return {
        "trials": len(trials),
        "slots": slots,
        "wall_s": round(summary["wall_seconds"], 1),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "seconds_before_first_trial": round(summary["seconds_before_first_trial"], 1),
        "trial_phase_s": round(last - first, 1),
        "ideal_trial_phase_s": round(max(busy / slots, max(spans)), 1),
        "slot_utilisation": round(summary["slot_utilisation"], 3),
        "slot_utilisation_while_trials_run": round(summary["slot_utilisation_while_trials_run"], 3),
        "seconds_to_fill_all_slots": round(starts[min(slots, len(starts)) - 1] - first, 1),
        "per_trial_median_s": {
            "tune_trial": med(list(tune_s.values())),
            # Tune's time for a trial beyond the trial's own span (actor reuse, reporting)
            "tune_minus_span": med(
                [tune_s[k] - r["ended_at"] + r["began_at"] for r in rows if (k := r["trial_key"]) in tune_s]
            ),
            "trial_span": med(spans),
            "train": med(train),
            "in_trial_overhead": med([s - t for s, t in zip(spans, train, strict=False)]),
        },
        "sum_trial_span_s": round(busy, 1),
        "sum_train_s": round(sum(train), 1),
        # slot-seconds no trial used between the first trial's start and the last one's end, per trial:
        # what the scheduler (launching, reusing actors, waiting on the driver) costs each trial
        "idle_slot_seconds_per_trial": round((slots * (last - first) - busy) / len(trials), 2),
    }


def plot(summary: dict[str, Any], report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = [s for s in summary["spans"] if s["kind"] == "trial"]
    end = summary["wall_seconds"]
    times, busy = busy_curve(trials, end, max(end / 2000, 0.1))
    slots, first = summary["slots"], report["figures"]["seconds_before_first_trial"]
    ideal = report["figures"]["ideal_trial_phase_s"]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.step(times, busy, where="post", label="busy fake-GPU slots", color="tab:blue")
    ax.plot([first, first + ideal, first + ideal], [slots, slots, 0], "--", color="tab:green",
            label=f"ideal: all trial time packed ({ideal:.0f} s)")  # fmt: skip
    ax.axhline(slots, color="grey", lw=0.8)
    for i, kind in enumerate(STAGE_KINDS):
        for s in (s for s in summary["spans"] if s["kind"] == kind):
            ax.axvspan(s["start"], s["end"], color=plt.get_cmap("Pastel1")(i), alpha=0.6, lw=0)
    ax.set_xlabel("seconds since the sweep started (shaded: generator / synthesis / phase metrics)")
    ax.set_ylabel("trials running")
    f = report["figures"]
    ax.set_title(
        f"{report['nodes']} nodes x {report['gpus_per_node']} fake GPUs, {f['trials']} trials: "
        f"{100 * f['slot_utilisation_while_trials_run']:.0f}% slot use once trials run, "
        f"{100 * f['slot_utilisation']:.0f}% over the sweep",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="center")  # the pre-trial stretch is empty there
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def say(line: str) -> None:
    print(time.strftime("%H:%M:%S"), line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--gpus-per-node", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2, help="VarNet training steps per trial")
    parser.add_argument("--grid", choices=["knee", "smoke"], default="knee")
    parser.add_argument(
        "--pipeline",
        choices=["auto", "true", "false"],
        default="false",
        help="resources.pipeline (fake GPUs are no GPUs: auto runs the sources in turn)",
    )
    parser.add_argument("--output-dir", default="phaselab_runs/simulated_cluster")
    parser.add_argument("--out", type=Path, help="result JSON; the utilisation figure goes next to it (.png)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_memory_usage_threshold", "0.98")  # the OOM killer watches the whole machine
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    import ray
    from ray.cluster_utils import Cluster

    from phaselab.config import load_config
    from phaselab.orchestration.grid import run_recon_grid
    from phaselab.tracking import Tracker

    slots = args.nodes * args.gpus_per_node
    overrides = [
        *grid_overrides(args.grid),
        f"train.steps={args.steps}",
        f"train.eval_every={args.steps}",
        "evaluation.bootstrap=0",
        "evaluation.max_slices=8",
        "resources.cpus_per_trial=1",
        "resources.torch_threads=1",
        "resources.custom={fake_gpu: 1}",
        f"resources.max_concurrent_trials={slots}",
        f"resources.synthesis_actors={min(4, slots)}",  # 16 phantom slices per split: more idle
        "resources.synthesis_cpus=0.5",
        "resources.synthesis_custom={fake_gpu: 1}",
        f"resources.pipeline={args.pipeline}",
        f"output_dir={Path(args.output_dir).resolve()}",
    ]
    small = {"object_store_memory": 80 * 1024**2}
    watch = MemoryWatch()
    watch.start()
    began = time.perf_counter()
    head = {"num_cpus": 0, "include_dashboard": False, **small}  # no trial or actor lands on the head
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(args.nodes):
        cluster.add_node(num_cpus=args.gpus_per_node, resources={"fake_gpu": args.gpus_per_node}, **small)
    cluster.wait_for_nodes()
    cluster_start_s = time.perf_counter() - began
    try:
        config = load_config("tiny", [*overrides, f"ray_address={cluster.address}"])
        result = run_recon_grid(config, log_fn=say)
    finally:
        ray.shutdown()
        cluster.shutdown()
        watch.stop.set()

    total_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    tracker = Tracker(result.tracking_uri, config.tracking.experiment)
    summary = tracker.load_json_artifact(result.parent_run_id, "timeline/timeline.json")
    tune_s = tune_trial_seconds(Path(config.output_dir) / "sweeps" / result.sweep_key / "ray_results")
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, {round(total_gb)} GiB RAM "
        "(shared with other jobs; no GPU)",
        "command": "python benchmarks/bench_simulated_cluster.py "
        f"--nodes {args.nodes} --gpus-per-node {args.gpus_per_node} --steps {args.steps} --grid {args.grid} "
        f"--pipeline {args.pipeline}",
        "nodes": args.nodes,
        "gpus_per_node": args.gpus_per_node,
        "steps_per_trial": args.steps,
        "grid": args.grid,
        "overrides": overrides[:-1],
        "cluster_start_s": round(cluster_start_s, 1),
        "sweep_s": round(result.seconds, 1),
        "trials_finished": len(result.rows),
        "nodes_used_by_trials": len({r.get("node_id") for r in result.rows}),
        "mlflow": {"tracking_uri": result.tracking_uri, "parent_run_id": result.parent_run_id},
        "min_available_memory_gb": round(watch.min_available_gb, 1),
        "max_ray_worker_processes": watch.max_workers,
        "load_average_after": os.getloadavg(),
        "figures": figures(summary, result.rows, tune_s),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        plot(summary, report, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
