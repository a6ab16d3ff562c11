"""SBDM sampling throughput: slices/s at batch 1 vs batch N and Heun vs PC, side by side in one process.

Example: python benchmarks/bench_sbdm_sampling.py --size 32 --net tiny --device cpu --out result.json
Weights are untrained (speed does not depend on them). Every configuration runs ``--repeats`` times,
interleaved so that load changes on a shared machine hit all of them alike; rates use the fastest run
(timeit's convention: other load only ever adds time), the median is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from phaselab.generators import create_phase_source
from phaselab.generators.sbdm import PAPER_NET, TINY_CONFIG, evaluations_per_slice


def net_config(name: str, size: int) -> dict:
    """Network keys for the source: the study's NCSN++ or the tiny test net, attention at the lowest level."""
    if name == "paper":
        levels = len(PAPER_NET.ch_mult)
        return {"image_size": size, "attn_resolutions": [size // 2 ** (levels - 1)]}
    tiny = {k: v for k, v in TINY_CONFIG.items() if k != "sigma_max"}
    return {**tiny, "image_size": size, "attn_resolutions": [size // 2 ** (len(tiny["ch_mult"]) - 1)]}


def time_sampling(source, magnitude: torch.Tensor, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    source.sample(magnitude, seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - began


def run(args: argparse.Namespace) -> dict:
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if args.device == "auto"
        else args.device
    )
    samplers = {"heun": args.heun_steps, "pc": args.pc_steps}
    sources = {
        name: create_phase_source(
            "sbdm",
            **net_config(args.net, args.size),
            sampler=name,
            steps=steps,
            sample_batch=max(args.batch_sizes),
        ).to(device)
        for name, steps in samplers.items()
    }
    magnitude = torch.rand(
        max(args.batch_sizes), args.size, args.size, generator=torch.Generator().manual_seed(0)
    )
    for source in sources.values():  # warm-up: allocator, kernels, autotuning
        source.config["steps"] = 2
        source.sample(magnitude[:1], seed=0)
        source.config["steps"] = samplers[source.config["sampler"]]
    load_before = os.getloadavg()
    times: dict[tuple[str, int], list[float]] = {(s, b): [] for s in samplers for b in args.batch_sizes}
    for _ in range(args.repeats):
        for (name, batch), runs in times.items():
            runs.append(time_sampling(sources[name], magnitude[:batch], device))
    rows = []
    for (name, batch), runs in times.items():
        seconds = min(runs)
        nfe = evaluations_per_slice(name, samplers[name])
        assert sources[name].last_evaluations == nfe
        rows.append(
            {
                "sampler": name,
                "steps": samplers[name],
                "nfe_per_slice": nfe,
                "batch": batch,
                "seconds": seconds,
                "seconds_median": statistics.median(runs),
                "slices_per_s": batch / seconds,
                "network_calls_per_s": nfe / seconds,
                "slice_evaluations_per_s": nfe * batch / seconds,
                "runs": runs,
            }
        )
    rate = {(r["sampler"], r["batch"]): r["slices_per_s"] for r in rows}
    lo, hi = min(args.batch_sizes), max(args.batch_sizes)
    ratios = {f"{name}_batch{hi}_over_batch{lo}": rate[name, hi] / rate[name, lo] for name in samplers}
    for b in args.batch_sizes:
        ratios[f"heun_over_pc_batch{b}"] = rate["heun", b] / rate["pc", b]
    ratios["pc_over_heun_nfe"] = evaluations_per_slice("pc", args.pc_steps) / evaluations_per_slice(
        "heun", args.heun_steps
    )
    return {
        "machine": args.machine or f"{os.cpu_count()}-core {platform.machine()} CPU",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "net": args.net,
        "params": sources["heun"].num_parameters(),
        "size": args.size,
        "bf16": device.type == "cuda",
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": rows,
        "ratios": ratios,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image size (square)")
    parser.add_argument("--net", choices=["tiny", "paper"], default="tiny")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument(
        "--heun-steps", type=int, default=40, help="Karras levels (2 evaluations each but the last)"
    )
    parser.add_argument(
        "--pc-steps", type=int, default=1000, help="VE levels (2 evaluations each); study: 1000"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--machine", default="", help="label for the machine in the output")
    parser.add_argument("--out", type=Path, help="write the result as JSON here (atomically)")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=args.out.name, suffix=".tmp", dir=args.out.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "results"}, indent=1))
    for r in result["results"]:
        print(
            f"{r['sampler']:>4} steps={r['steps']:<5} nfe={r['nfe_per_slice']:<5} batch={r['batch']:<3} "
            f"{r['slices_per_s']:.3f} slices/s ({r['slice_evaluations_per_s']:.1f} slice evaluations/s)"
        )
    return result


if __name__ == "__main__":
    main()
