"""Magnitude + phase source -> k-space files: the grid's shards and magnitude-only archives, one code path.

``tasks`` does one volume (read, sample the phase, write), ``plan`` keys the grid's caches by content,
``archive`` ingests DICOM/NIfTI/... folders, ``manifest`` records what a folder holds. Where the tasks run
(in this process, or on Ray Data actors) is the caller's choice: see ``phaselab.orchestration``.
"""

from phaselab.synthesis.archive import ArchiveResult, BadInputs, run_in_process, synthesize_archive
from phaselab.synthesis.manifest import manifest_path, read_manifest, write_manifest
from phaselab.synthesis.plan import SynthesisPlan, plan_synthesis
from phaselab.synthesis.sampling import sample_phase, slice_seed
from phaselab.synthesis.source_spec import SourceSpec
from phaselab.synthesis.tasks import SYNTHESIS_VERSION, SynthesisSettings, VolumeTask, run_task

__all__ = [
    "SYNTHESIS_VERSION",
    "ArchiveResult",
    "BadInputs",
    "SourceSpec",
    "SynthesisPlan",
    "SynthesisSettings",
    "VolumeTask",
    "manifest_path",
    "plan_synthesis",
    "read_manifest",
    "run_in_process",
    "run_task",
    "sample_phase",
    "slice_seed",
    "synthesize_archive",
    "write_manifest",
]
