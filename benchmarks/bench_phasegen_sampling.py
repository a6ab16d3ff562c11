"""PhaseGen sampling throughput: slices/s at batch 1 vs batch 32 in one process, and their ratio.

Sampling runs in float32/complex64 (no bf16 autocast for complex networks); the network is untrained,
which does not change the cost. Example (CPU, tiny):
    python benchmarks/bench_phasegen_sampling.py --size 32 --net tiny --T 20 --device cpu \
        --out benchmarks/results/phasegen_sampling_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from phaselab.generators.phasegen import PhaseGenPhaseSource
from phaselab.generators.phasegen.diffusion import sampling_timesteps
from phaselab.generators.phasegen.unet import PAPER_FEATURES
from phaselab.nn.complex_layers import count_parameters

NETS = {
    "tiny": {"features": (8, 16), "blocks": 1, "time_dim": 32},
    "paper": {"features": PAPER_FEATURES, "blocks": 3, "time_dim": 256},
}


def _machine(device: torch.device, label: str | None) -> str:
    if label:
        return label
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()})"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_sampling(
    source: PhaseGenPhaseSource, batch: int, size: int, steps: int | None, repeats: int, device: torch.device
) -> dict:
    magnitude = torch.rand(batch, size, size, generator=torch.Generator().manual_seed(batch))
    source.sample(magnitude, seed=0, steps=steps)  # warm-up: allocator, kernels, cudnn autotuning
    _sync(device)
    began = time.perf_counter()
    for r in range(repeats):
        source.sample(magnitude, seed=r + 1, steps=steps)
    _sync(device)
    seconds = (time.perf_counter() - began) / repeats
    return {
        "batch": batch,
        "seconds_per_call": seconds,
        "slices_per_s": batch / seconds,
        "seconds_per_slice": seconds / batch,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--net", choices=sorted(NETS), default="paper")
    parser.add_argument("--T", type=int, default=1000, help="diffusion timesteps of the model")
    parser.add_argument("--steps", type=int, default=None, help="respaced sampling steps (default: all T)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    parser.add_argument("--machine", default=None, help="label for the machine (default: detected)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    source = PhaseGenPhaseSource(**NETS[args.net], timesteps=args.T).to(device)
    runs = [time_sampling(source, b, args.size, args.steps, args.repeats, device) for b in args.batches]
    by_batch = {r["batch"]: r["slices_per_s"] for r in runs}
    result = {
        "benchmark": "phasegen_sampling",
        "machine": _machine(device, args.machine),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "dtype": "float32/complex64 (no bf16 autocast for complex networks)",
        "net": args.net,
        "features": list(NETS[args.net]["features"]),
        "parameters": count_parameters(source.networks["unet"]),
        "size": args.size,
        "T": args.T,
        "network_evaluations_per_slice": len(sampling_timesteps(args.T, args.steps)),
        "runs": runs,
        "throughput_ratio": (by_batch[max(by_batch)] / by_batch[min(by_batch)])
        if len(by_batch) > 1
        else None,
        "ratio_of": f"slices/s at batch {max(by_batch)} / at batch {min(by_batch)}",
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main()
