"""Phase-source registry, checkpoints and per-slice seeding."""

import pytest
import torch

import phaselab.generators as generators
from phaselab.data.errors import DataError
from phaselab.generators import (
    PhaseSource,
    available_phase_sources,
    create_phase_source,
    load_phase_source,
    register_phase_source,
    slice_generators,
)
from phaselab.generators.base import _REGISTRY


def test_import_registers_the_baselines():
    assert {"gt", "zero", "iid_gaussian", "smooth", "sinusoid"} <= set(available_phase_sources())
    assert generators.create_phase_source("smooth").name == "smooth"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown phase source 'nope'.*iid_gaussian.*smooth"):
        create_phase_source("nope")


def test_phase_source_class_answers_without_building():
    assert generators.phase_source_class("smooth") is type(create_phase_source("smooth"))
    assert not generators.phase_source_class("gt").requires_training
    with pytest.raises(ValueError, match="unknown phase source 'nope'"):
        generators.phase_source_class("nope")


def test_config_keywords_are_checked_and_kept():
    source = create_phase_source("iid_gaussian", sigma=0.5)
    assert source.config == {"sigma": 0.5} and not source.requires_training
    with pytest.raises(TypeError):
        create_phase_source("iid_gaussian", width=3)


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):

        @register_phase_source("zero")
        class Other(PhaseSource):
            def sample(self, magnitude, *, seed, true_phase=None):
                return torch.zeros_like(magnitude)


class _Learned(PhaseSource):
    """A source with learned state, to exercise checkpoints."""

    requires_training = True

    def __init__(self, width: int = 4):
        super().__init__(width=width)
        self.weight = torch.zeros(width)

    def fit(self, magnitudes, phases, **kw):
        self.weight = torch.full_like(self.weight, float(phases.mean()))
        return {"loss": 0.0}

    def sample(self, magnitude, *, seed, true_phase=None):
        return torch.full_like(magnitude, float(self.weight.mean()))

    def state_dict(self):
        return {"weight": self.weight.clone()}

    def load_state_dict(self, state):
        if set(state) != {"weight"} or state["weight"].shape != self.weight.shape:
            raise ValueError(f"expected weight of shape {tuple(self.weight.shape)}")
        self.weight = state["weight"].clone()


@pytest.fixture()
def learned():
    register_phase_source("test_learned")(_Learned)
    yield _Learned
    _REGISTRY.pop("test_learned")


def test_save_load_round_trip_of_learned_state(tmp_path, learned):
    source = create_phase_source("test_learned", width=3)
    source.fit(torch.ones(2, 8, 8), torch.full((2, 8, 8), 0.25))
    path = source.save(tmp_path / "sub" / "gen.pt")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = load_phase_source(path)
    assert isinstance(loaded, _Learned) and loaded.config == {"width": 3}
    torch.testing.assert_close(loaded.sample(torch.ones(1, 4, 4), seed=0), torch.full((1, 4, 4), 0.25))


def test_save_load_round_trip_of_a_baseline(tmp_path):
    source = create_phase_source("smooth", correlation=0.1, amplitude=0.3)
    loaded = load_phase_source(source.save(tmp_path / "smooth.pt"))
    assert loaded.name == "smooth" and loaded.config == source.config
    magnitude = torch.rand(2, 16, 16)
    assert torch.equal(loaded.sample(magnitude, seed=3), source.sample(magnitude, seed=3))


def test_truncated_checkpoint_is_a_data_error(tmp_path, learned):
    path = create_phase_source("test_learned").save(tmp_path / "gen.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="gen.pt: not a readable phase-source checkpoint"):
        load_phase_source(path)


def test_missing_file_wrong_name_and_mismatched_state_are_data_errors(tmp_path, learned):
    with pytest.raises(DataError, match="not found"):
        load_phase_source(tmp_path / "absent.pt")
    torch.save({"name": "no_such_source", "config": {}, "state_dict": {}}, tmp_path / "name.pt")
    with pytest.raises(DataError, match="name.pt: unknown phase source 'no_such_source'"):
        load_phase_source(tmp_path / "name.pt")
    torch.save(
        {"name": "test_learned", "config": {"width": 4}, "state_dict": {"weight": torch.zeros(5)}},
        tmp_path / "s.pt",
    )
    with pytest.raises(DataError, match="s.pt: state does not fit phase source 'test_learned'"):
        load_phase_source(tmp_path / "s.pt")
    torch.save({"name": "zero", "config": {}, "state_dict": {"w": torch.zeros(1)}}, tmp_path / "z.pt")
    with pytest.raises(DataError, match="state does not fit"):
        load_phase_source(tmp_path / "z.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(DataError, match="must be a dict"):
        load_phase_source(tmp_path / "list.pt")


def test_slice_generators_are_keyed_by_seed_and_index():
    def first_draw(gens):
        return [float(torch.rand((), generator=g)) for g in gens]

    a = first_draw(slice_generators(5, 3))
    assert a[:2] == first_draw(slice_generators(5, 2))  # independent of the batch size
    assert len(set(a)) == 3  # slices differ
    assert a != first_draw(slice_generators(6, 3))
    # per-slice seeds: slice i keyed by (seed[i], 0), i.e. slice 0 of a batch seeded with seed[i]
    assert first_draw(slice_generators([6, 5], 2)) == [first_draw(slice_generators(6, 1))[0], a[0]]
    with pytest.raises(ValueError, match="per-slice seeds"):
        slice_generators([1, 2], 3)
    with pytest.raises(ValueError, match="non-negative"):
        slice_generators(-1, 1)
