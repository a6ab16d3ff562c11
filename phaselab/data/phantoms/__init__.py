"""Embedded phantom dataset: knee and brain "patients" whose complex images carry realistic MRI phase.

Phase = smooth B0 polynomial + coil phase (patient-specific, anatomy-independent) + tissue offsets
(chemical shift of fat and marrow, fluid, grey/white matter) + susceptibility phase (dipole field of the
susceptibility map, strong at air and bone boundaries). The last two follow the anatomy, so a network
can learn them from the magnitude; a smooth random field cannot imitate them (SPEC section 2).

``anatomy`` draws and paints the tissues, ``phase`` the phase, ``volumes`` renders slices and volumes,
``dataset`` writes them as fastMRI files.
"""

from phaselab.data.phantoms.anatomy import (
    AIR,
    BONE,
    CARTILAGE,
    CSF,
    FAT,
    FLUID,
    GREY,
    LIGAMENT,
    MARROW,
    MUSCLE,
    SINUS,
    TISSUES,
    VESSEL,
    WHITE,
)
from phaselab.data.phantoms.dataset import PHANTOM_VERSION, phantom_path, write_phantom_dataset
from phaselab.data.phantoms.phase import PHASE_EDGE
from phaselab.data.phantoms.volumes import (
    KINDS,
    NOISE_AT_256,
    PhantomSlice,
    PhantomVolume,
    make_phantom_slice,
    make_phantom_volume,
)

__all__ = [
    "AIR", "BONE", "CARTILAGE", "CSF", "FAT", "FLUID", "GREY", "KINDS", "LIGAMENT", "MARROW", "MUSCLE",
    "NOISE_AT_256", "PHANTOM_VERSION", "PHASE_EDGE", "SINUS", "TISSUES", "VESSEL", "WHITE",
    "PhantomSlice", "PhantomVolume", "make_phantom_slice", "make_phantom_volume", "phantom_path",
    "write_phantom_dataset",
]  # fmt: skip
