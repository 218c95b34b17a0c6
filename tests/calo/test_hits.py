"""Hit signatures: patterns of small layers, counts of large ones, drawn from nearest showers."""

from __future__ import annotations

import numpy as np
import pytest

from generative.calo.features import layer_energies
from generative.calo.hits import HitSignatures
from generative.preprocessing import step_from_dict
from tests.calo.conftest import fast_shower_model

#: a 3-voxel layer (patterns kept) and a 4-voxel layer (counts kept, with max_pattern_voxels=3)
SIZES = [3, 4]


def _showers() -> np.ndarray:
    return np.array(
        [
            [5.0, 0.0, 3.0, 9.0, 2.5, 0.0, 1.0],
            [0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 4.0],
            [2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )


def _training(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sparse showers of the two layers (MeV) and their incident energies."""
    rng = np.random.default_rng(seed)
    incident = 2.0 ** rng.integers(8, 12, n)
    showers = rng.gamma(1.0, 3.0, (n, sum(SIZES))) * (incident[:, None] / 256)
    showers[rng.random(showers.shape) < 0.4] = 0.0
    return showers, incident


def _layers(showers: np.ndarray) -> np.ndarray:
    return np.add.reduceat(showers, [0, SIZES[0]], axis=1)


def _fitted(k: int) -> tuple[HitSignatures, np.ndarray, np.ndarray]:
    showers, incident = _training()
    step = HitSignatures(SIZES, cut=2.0, k=k, max_pattern_voxels=3)
    return step.fit(showers, incident, _layers(showers) == 0), showers, incident


def test_signatures_are_patterns_of_small_layers_and_counts_of_large_ones():
    step = HitSignatures(SIZES, cut=2.0, max_pattern_voxels=3)
    sig = step.signatures(_showers())
    # layer 0 pattern: bits of voxels >= 2 MeV (voxel 0 = bit 0); layer 1: how many are >= 2
    np.testing.assert_array_equal(sig, [[0b101, 2], [0, 4], [0b111, 0]])
    np.testing.assert_array_equal(
        step.context(sig), [[1, 0, 1, 0.5], [0, 0, 0, 1.0], [1, 1, 1, 0.0]]
    )


def test_keep_names_the_pattern_of_small_layers_and_the_hits_of_large_ones():
    step = HitSignatures(SIZES, cut=2.0, max_pattern_voxels=3)
    voxels = np.array([[0.1, 0.7, 0.2, 3.0, 1.0, 2.5, 0.5], [0.1, 0.7, 0.2, 0.4, 0.1, 0.3, 0.2]])
    keep = step.keep(np.array([[0b110, 2], [0, 0]]), voxels)
    # the small layer keeps its pattern whatever its values; the large one its voxels >= 2 MeV
    np.testing.assert_array_equal(keep[0], [False, True, True, True, False, True, False])
    # a layer left with no voxel keeps its hottest one
    np.testing.assert_array_equal(keep[1], [False, True, False, True, False, False, False])


def test_a_shower_draws_the_signature_of_its_nearest_training_shower_with_its_empty_layers():
    step, showers, incident = _fitted(k=1)
    layers = _layers(showers)
    drawn = step.sample(incident, layers, layers == 0, random_state=0)
    np.testing.assert_array_equal(drawn, step.signatures(showers))


def test_sampling_is_reproducible_per_seed_and_survives_a_round_trip():
    step, showers, incident = _fitted(k=8)
    layers = _layers(showers) * 1.1
    empty = layers == 0
    first = step.sample(incident, layers, empty, random_state=5)
    np.testing.assert_array_equal(first, step.sample(incident, layers, empty, random_state=5))
    assert not np.array_equal(first, step.sample(incident, layers, empty, random_state=6))
    loaded = step_from_dict(step.to_dict())
    np.testing.assert_array_equal(first, loaded.sample(incident, layers, empty, random_state=5))
    # every drawn signature comes from a training shower with the same empty layers
    codes = empty @ (1 << np.arange(2))
    for code in np.unique(codes):
        allowed = {tuple(s) for s in step.signatures_[step.empty_ == code]}
        assert {tuple(s) for s in first[codes == code]} <= allowed


def test_bad_input_is_refused():
    step = HitSignatures(SIZES, cut=2.0)
    with pytest.raises(ValueError, match=r"shape \(N, 7\)"):
        step.signatures(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="incident energies and empty layers"):
        step.fit(np.ones((3, 7)), np.ones(2), np.zeros((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="cut must be a positive"):
        HitSignatures(SIZES, cut=0.0).signatures(np.ones((3, 7)))


def test_generated_showers_hit_only_voxels_their_drawn_signature_names(
    tiny_geometry, tiny_data, monkeypatch
):
    model = fast_shower_model("caloflow_inn", tiny_geometry, hits=10)
    model.fit(tiny_data.showers, tiny_data.energies)
    hits = model.hits_
    drawn = []

    def record(*args, **kwargs):
        drawn.append(sample(*args, **kwargs))
        return drawn[-1]

    sample = hits.sample
    monkeypatch.setattr(hits, "sample", record)
    incident = np.repeat(2.0 ** np.arange(8, 13), 40)
    showers = model.sample(incident, random_state=2)
    signatures = np.concatenate(drawn)
    assert signatures.shape == (len(incident), len(tiny_geometry.active_layers))
    # the tiny geometry's layers all keep patterns: a generated layer hits only voxels its
    # signature names (fewer where a named voxel fell below the threshold after rescaling)
    generated = hits.signatures(showers)
    assert np.all(generated & ~signatures == 0)
    e_layers = model.sample_layer_energies(incident, random_state=2)
    filled = e_layers >= model.threshold_
    np.testing.assert_allclose(
        layer_energies(showers, tiny_geometry)[filled], e_layers[filled], rtol=1e-9
    )
