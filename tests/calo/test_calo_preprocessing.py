"""Invertibility and edge cases of the CaloFlow-style shower preprocessing."""

import numpy as np
import pytest

from generative.calo.preprocessing import (
    Dequantize,
    EnergyFractions,
    LayerShapes,
    LogitAlpha,
    RelativeToIncident,
    ShowerPipeline,
    step_from_dict,
)

LAYER_SIZES = [4, 1, 3]
NOISE = 1e-3


def _showers(n=200, seed=0):
    """Sparse showers (MeV) with every value either 0 or above the noise level."""
    rng = np.random.default_rng(seed)
    incident = 2.0 ** rng.integers(8, 14, n)
    showers = rng.exponential(1.0, (n, sum(LAYER_SIZES))) * incident[:, None] / 20
    showers[rng.random(showers.shape) < 0.4] = 0.0
    showers[:3, :4] = 0.0  # some showers with an empty first layer
    showers[3] = 0.0  # and one empty shower
    return showers + (showers > 0) * 2.0, incident


def _pipeline(seed=0):
    return ShowerPipeline(
        [Dequantize(NOISE, seed), RelativeToIncident(0.1), LayerShapes(LAYER_SIZES)]
    )


def test_dequantize_fills_only_zeros_and_inverse_restores_them():
    showers, incident = _showers()
    step = Dequantize(NOISE, random_state=3)
    z = step.forward(showers, incident)
    zeros = showers == 0
    assert np.all((z[zeros] > 0) & (z[zeros] < NOISE))
    np.testing.assert_array_equal(z[~zeros], showers[~zeros])
    np.testing.assert_array_equal(step.inverse(z, incident), showers)


def test_dequantize_is_seeded():
    showers, incident = _showers()
    a = Dequantize(NOISE, random_state=1).forward(showers, incident)
    b = Dequantize(NOISE, random_state=1).forward(showers, incident)
    c = Dequantize(NOISE, random_state=2).forward(showers, incident)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dequantize_inverse_zeroes_below_the_noise_level():
    z = np.array([[0.5 * NOISE, 2 * NOISE, -1.0]])
    np.testing.assert_array_equal(Dequantize(NOISE).inverse(z, None), [[0.0, 2 * NOISE, 0.0]])


def test_relative_energies_lie_below_one_over_one_plus_margin():
    showers, incident = _showers()
    step = RelativeToIncident(margin=0.1).fit(showers, incident)
    z = step.forward(showers, incident)
    assert z.sum(axis=1).max() == pytest.approx(1 / 1.1)
    np.testing.assert_allclose(step.inverse(z, incident), showers, rtol=1e-12)


def test_layer_shapes_sum_to_one_and_carry_the_layer_energies():
    showers, incident = _showers()
    z = LayerShapes(LAYER_SIZES).forward(showers, incident)
    energies, shapes = LayerShapes(LAYER_SIZES).split(z)
    np.testing.assert_allclose(energies[:, 0], showers[:, :4].sum(axis=1))
    sums = np.add.reduceat(shapes, [0, 4, 5], axis=1)
    np.testing.assert_allclose(sums[energies > 0], 1.0)
    assert np.all(sums[energies == 0] == 0)  # an empty layer has an all-zero shape, not NaN


def test_layer_shapes_inverse_renormalises_generated_shapes():
    energies = np.array([[2.0, 1.0, 3.0]])
    shapes = np.array([[0.5, 0.5, 0.5, -0.1, 7.0, 1.0, 1.0, 2.0]])
    x = LayerShapes(LAYER_SIZES).inverse(np.concatenate([energies, shapes], axis=1), None)
    np.testing.assert_allclose(x, [[2 / 3, 2 / 3, 2 / 3, 0.0, 1.0, 0.75, 0.75, 1.5]])


def test_energy_fractions_round_trip_and_bounds():
    rng = np.random.default_rng(0)
    e = rng.random((100, 5)) / 5
    u = EnergyFractions().forward(e, None)
    assert np.all((u >= 0) & (u <= 1))
    np.testing.assert_allclose(u[:, 0], e.sum(axis=1))
    np.testing.assert_allclose(EnergyFractions().inverse(u, None), e, atol=1e-15)


def test_energy_fractions_of_empty_trailing_layers():
    e = np.array([[0.2, 0.0, 0.0], [0.0, 0.0, 0.0]])
    u = EnergyFractions().forward(e, None)
    np.testing.assert_array_equal(u, [[0.2, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(EnergyFractions().inverse(u, None), e)


def test_logit_alpha_is_finite_at_the_ends_and_inverts():
    x = np.array([[0.0, 1e-3, 0.5, 1.0]])
    step = LogitAlpha(1e-6)
    z = step.forward(x, None)
    assert np.all(np.isfinite(z))
    assert z[0, 0] == pytest.approx(-np.log(1e6), rel=1e-5)
    np.testing.assert_allclose(step.inverse(z, None), x, atol=1e-12)
    np.testing.assert_array_equal(step.inverse(np.array([[-1e3, 1e3]]), None), [[0.0, 1.0]])


def test_pipeline_round_trip_recovers_showers_up_to_the_noise():
    showers, incident = _showers()
    pipe = _pipeline()
    z = pipe.fit_forward(showers, incident)
    assert np.all(np.isfinite(z))
    back = pipe.inverse(z, incident)
    np.testing.assert_allclose(back, showers, rtol=1e-9, atol=0)
    assert np.array_equal(back == 0, showers == 0)


def test_pipeline_serialises_its_fitted_state():
    showers, incident = _showers()
    pipe = _pipeline().fit(showers, incident)
    copy = step_from_dict(pipe.to_dict())
    np.testing.assert_array_equal(copy.forward(showers, incident), pipe.forward(showers, incident))


def test_bad_settings_raise_clear_errors():
    showers, incident = _showers()
    with pytest.raises(ValueError, match="noise must be a positive energy"):
        Dequantize(0.0).forward(showers, incident)
    with pytest.raises(ValueError, match="alpha must lie in"):
        LogitAlpha(0.7).forward(showers, incident)
    with pytest.raises(ValueError, match="showers have 8 voxels but the layers hold 9"):
        LayerShapes([4, 5]).forward(showers, incident)
    with pytest.raises(ValueError, match="3 incident energies for 200 showers"):
        RelativeToIncident().fit(showers, incident[:3])
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        step_from_dict({"name": "Nope"})
