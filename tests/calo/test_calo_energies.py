"""The layer-energy code of flow 1: exact round trip, empty layers, per-energy standardisation."""

from __future__ import annotations

import numpy as np
import pytest

from generative.calo.energies import LayerEnergyCode
from generative.calo.preprocessing import step_from_dict


def layer_energies(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five layers whose total spread shrinks with E_inc (as calorimeter resolution does)."""
    rng = np.random.default_rng(seed)
    incident = 2.0 ** rng.integers(8, 23, n).astype(np.float64)
    total = incident * rng.normal(1.0, 0.3 / np.sqrt(incident / 256.0))
    fractions = rng.dirichlet([1.0, 6.0, 8.0, 0.3, 0.2], n)
    energies = np.abs(total)[:, None] * fractions
    energies[rng.random(energies.shape) < 0.3] = 0.0
    energies[(energies > 0) & (energies < 2.0)] = 2.0
    return energies, incident


def test_round_trip_is_exact_and_keeps_empty_layers_empty():
    energies, incident = layer_energies()
    code = LayerEnergyCode(floor=1.99, random_state=1).fit(energies, incident)
    z = code.forward(energies, incident)
    assert np.all(np.isfinite(z))
    back = code.inverse(z, incident)
    empty = energies == 0
    assert np.array_equal(back == 0, empty)
    # non-empty layers come back to float precision; the dequantized empty ones carry
    # less than the floor each, so totals agree within 5 x 2 MeV
    np.testing.assert_allclose(back[~empty], energies[~empty], rtol=1e-9)
    assert np.all(np.abs(code.decode(z, incident).sum(1) - energies.sum(1)) < 5 * 2.0)


def test_features_are_standardised_at_every_incident_energy():
    energies, incident = layer_energies()
    code = LayerEnergyCode(floor=2.0).fit(energies, incident)
    z = code.forward(energies, incident)
    for e in np.unique(incident):
        at = z[incident == e]
        # a global standardisation would leave the E_tot / E_inc spread 30x apart across energies
        np.testing.assert_allclose(at.mean(axis=0), 0.0, atol=1e-9)
        np.testing.assert_allclose(at.std(axis=0), 1.0, rtol=1e-9)


def test_forward_is_deterministic_and_the_code_survives_serialisation():
    energies, incident = layer_energies(500)
    code = LayerEnergyCode(floor=[1.0, 2.0, 2.0, 0.5, 0.5], random_state=3).fit(energies, incident)
    again = step_from_dict(code.to_dict())
    np.testing.assert_array_equal(
        again.forward(energies, incident), code.forward(energies, incident)
    )
    z = np.random.default_rng(0).normal(size=(200, 5))
    np.testing.assert_array_equal(again.inverse(z, incident[:200]), code.inverse(z, incident[:200]))


def test_decoded_energies_are_non_negative_and_sum_to_the_coded_total():
    energies, incident = layer_energies(500)
    code = LayerEnergyCode(floor=2.0).fit(energies, incident)
    z = 3.0 * np.random.default_rng(1).normal(size=(500, 5))
    decoded = code.decode(z, incident)
    assert np.all(decoded >= 0)
    loc, scale = code._loc_scale(np.log10(incident))
    total = incident * np.exp(z[:, 0] * scale[:, 0] + loc[:, 0])
    np.testing.assert_allclose(decoded.sum(axis=1), total, rtol=1e-9)


@pytest.mark.parametrize("floor", [0.0, -1.0, float("nan")])
def test_a_floor_that_is_not_a_positive_energy_is_refused(floor):
    energies, incident = layer_energies(100)
    with pytest.raises(ValueError, match="floor"):
        LayerEnergyCode(floor=floor).fit(energies, incident)


def test_patterns_of_empty_layers_are_drawn_with_their_training_frequencies():
    energies, incident = layer_energies(6000)
    code = LayerEnergyCode(floor=1.99).fit(energies, incident)
    drawn = code.sample_empty(incident, random_state=0)
    for e in (256.0, 2.0**22):
        real, gen = code.empty(energies[incident == e]), drawn[incident == e]
        # each layer's empty share within 4 binomial standard errors
        sigma = np.sqrt(real.mean(0) * (1 - real.mean(0)) / len(real)) + 1e-3
        assert np.all(np.abs(gen.mean(0) - real.mean(0)) < 4 * sigma * np.sqrt(2))
    np.testing.assert_array_equal(drawn, code.sample_empty(incident, random_state=0))
    assert not np.array_equal(drawn, code.sample_empty(incident, random_state=1))
