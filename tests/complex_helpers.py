"""Shared by the complex-valued layer, PhaseGen and complex U-Net tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny convolutions gain nothing from intra-op threads, and on a loaded 2-core box they stall."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_complex(*shape, seed=0):
    """A seeded complex tensor with standard-normal real and imaginary parts."""
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
