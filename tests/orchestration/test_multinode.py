"""A head and two worker nodes on one machine (ray.cluster_utils.Cluster), each worker with one "fake_gpu":
the grid's trials and the Ray Data synthesis job must spread over both workers, which run the working tree
the driver shipped.

The cluster needs its own Ray, so the scenario runs in a subprocess (this file run as a script) and
the test process keeps its shared local Ray untouched.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]

TINY: list[str] = [  # on top of the tiny preset
    "grid.seeds=[0, 1]",
    # One trial or one synthesis actor per worker node: each needs that node's only fake GPU.
    "resources.cpus_per_trial=0.5",
    "resources.custom={fake_gpu: 1}",
    "resources.max_concurrent_trials=2",
    "resources.synthesis_actors=2",
    "resources.synthesis_cpus=0.25",
    "resources.synthesis_custom={fake_gpu: 1}",
]


def _log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def _scenario(output_dir: str) -> dict:
    """Start the cluster, run the tiny grid on it, report where trials and shards ran."""
    import h5py
    import ray
    from ray.cluster_utils import Cluster

    from phaselab.config import load_config
    from phaselab.orchestration.grid import run_recon_grid

    small = {"object_store_memory": 80 * 1024**2}
    head = {"num_cpus": 0, "include_dashboard": False, **small}  # trials and actors cannot land here
    cluster = Cluster(initialize_head=True, head_node_args=head)
    workers = [cluster.add_node(num_cpus=1, resources={"fake_gpu": 1}, **small) for _ in range(2)]
    cluster.wait_for_nodes()
    try:
        config = load_config("tiny", [*TINY, f"output_dir={output_dir}", f"ray_address={cluster.address}"])
        result = run_recon_grid(config, log_fn=_log)

        @ray.remote(num_cpus=0, resources={"fake_gpu": 1})
        def worker_code() -> str:
            import phaselab

            return phaselab.__file__

        worker_phaselab = ray.get(worker_code.remote())
        shards = sorted(Path(output_dir, "cache", "synthesis").rglob("*.h5"))
        shard_nodes = {}
        for shard in shards:
            with h5py.File(shard, "r") as f:
                shard_nodes[f"{shard.parent.name}/{shard.name}"] = str(f.attrs["phaselab_node_id"])
        return {
            "head": cluster.head_node.node_id,
            "workers": [w.node_id for w in workers],
            "trials": {r["cell"]["seed"]: r.get("node_id") for r in result.rows},
            "shards": shard_nodes,
            "parent_run_id": result.parent_run_id,
            "tracking_uri": result.tracking_uri,
            "worker_phaselab": worker_phaselab,
        }
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow  # 30-80 s on 2 cores: out of CI (python -m pytest -m slow)
def test_trials_and_synthesis_spread_over_two_worker_nodes(tmp_path):
    env = {**os.environ, "RAY_memory_usage_threshold": "0.98", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, __file__, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    workers = set(found["workers"])
    assert len(workers) == 2 and found["head"] not in workers

    # Two concurrent trials, each holding a node's only fake GPU: one on each worker, none on the head.
    assert sorted(found["trials"]) == ["0", "1"]  # the two seeds
    assert set(found["trials"].values()) == workers

    # The synthesis job's two actors (one per fake GPU) each wrote shards: it used both workers.
    shards = found["shards"]
    assert len(shards) >= 2 and all(name.startswith("synth-gt-") for name in shards)  # recTrain + recVal
    assert set(shards.values()) == workers

    # Workers import the working tree the driver shipped (runtime_env working_dir), not an installed copy.
    shipped = Path(found["worker_phaselab"]).parents[1]
    assert shipped != ROOT and not shipped.is_relative_to(ROOT)
    for module in ("phaselab/orchestration/ray_runtime.py", "phaselab/orchestration/trial.py"):
        assert (shipped / module).read_text() == (ROOT / module).read_text()

    from phaselab.tracking import Tracker

    tracker = Tracker(found["tracking_uri"], "phaselab-recon-grid")
    children = tracker.child_runs(found["parent_run_id"]).values()
    assert {run.data.tags["phaselab.node_id"] for run in children} == workers
    assert all(run.info.status == "FINISHED" for run in children)


if __name__ == "__main__":
    print(json.dumps(_scenario(sys.argv[1])))
