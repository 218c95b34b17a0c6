"""Validation metrics give known answers on constructed inputs."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import polynomial_kernel

from generative.calo.features import high_level_inputs, low_level_inputs
from generative.calo.io import ShowerData
from generative.calo.metrics import (
    ClassifierConfig,
    classifier_test,
    frechet_physics_distance,
    histogram_edges,
    kernel_physics_distance,
    separation_power,
    separation_power_histograms,
    separation_powers,
)
from generative.training import TrainingConfig

FAST = ClassifierConfig(
    n_hidden_layers=1,
    width=32,
    training=TrainingConfig(epochs=8, batch_size=256, learning_rate=3e-3, patience=3),
)


def test_separation_power_known_values():
    x = np.random.default_rng(0).normal(size=1000)
    assert separation_power(x, x) == 0.0
    assert separation_power(x, x + 100.0) == pytest.approx(1.0, abs=1e-12)
    # S = 1/2 [(1 - 1/2)^2 / (3/2) + (1/2)^2 / (1/2)] = 1/3; normalisation is done inside
    assert separation_power_histograms([2, 0], [5, 5]) == pytest.approx(1 / 3)


def test_separation_power_statistics():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20_000), rng.normal(size=20_000)
    # for equal parents E[S] ~ n_bins / 4 (1/N1 + 1/N2) = 1.25e-3 with 50 bins
    same = separation_power(a, b)
    assert same < 5e-3
    assert separation_power(a, b + 1.0) > 0.05 > 10 * same


def test_values_outside_explicit_bins_fold_into_the_outer_bins():
    # all of the second sample lies above the last edge and is counted in the last bin
    assert separation_power([0.5, 1.5], [5.0, 5.0], np.array([0.0, 1.0, 2.0])) == pytest.approx(
        separation_power_histograms([1, 1], [0, 2])
    )


def test_histogram_edges():
    a = np.linspace(1, 1000, 500)
    edges = histogram_edges(a, a, 10, log_scale=True, clip_quantile=0.0)
    np.testing.assert_allclose(np.diff(np.log10(edges)), np.diff(np.log10(edges))[0])
    assert edges[0] == pytest.approx(1.0)
    assert edges[-1] == pytest.approx(1000.0)
    constant = histogram_edges(np.ones(5), np.ones(5), 4)
    assert constant[0] < 1.0 < constant[-1]


def test_separation_power_table_and_errors():
    rng = np.random.default_rng(2)
    ref = pd.DataFrame(
        {"E_layer_0": rng.exponential(100, 5000), "EC_eta_layer_1": rng.normal(size=5000)}
    )
    gen = ref.copy()
    gen["EC_eta_layer_1"] += 3.0
    table = separation_powers(ref, gen)
    assert list(table.index) == ["E_layer_0", "EC_eta_layer_1"]
    assert table["E_layer_0"] == 0.0
    assert table["EC_eta_layer_1"] > 0.5
    with pytest.raises(KeyError, match="EC_eta_layer_1"):
        separation_powers(ref, gen[["E_layer_0"]])
    with pytest.raises(ValueError, match="NaN in 1 of 3 rows"):
        separation_power([1.0, np.nan, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="increasing edges"):
        separation_power([1.0], [1.0], np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="different bins"):
        separation_power_histograms([1, 2], [1, 2, 3])


def test_classifier_cannot_separate_samples_of_one_distribution():
    rng = np.random.default_rng(3)
    ref, gen = rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4))
    result = classifier_test(ref, gen, config=FAST, random_state=0)
    assert result.n_test == 1200
    # the AUC of an uninformative score on 600 + 600 test events has a spread of 0.017;
    # 0.06 is 3.5 of those
    assert abs(result.auc - 0.5) < 0.06
    assert abs(result.auc_raw - 0.5) < 0.06
    assert result.jsd < 0.05


@pytest.mark.parametrize("preprocessing", ["whiten", "standardise", "none"])
def test_classifier_separates_disjoint_samples(preprocessing):
    rng = np.random.default_rng(4)
    ref, gen = rng.normal(size=(2000, 3)), rng.normal(size=(2000, 3)) + 6.0
    config = dataclasses.replace(FAST, preprocessing=preprocessing)
    result = classifier_test(ref, gen, config=config, random_state=0)
    assert result.auc > 0.99
    assert result.jsd > 0.9
    assert result.accuracy > 0.97


def test_whitened_classifier_finds_a_shift_hidden_in_correlated_inputs():
    # like E_tot/E_inc inside (log E_inc, log E_tot): the samples differ only in b - a, by one
    # standard deviation of it, which is 1/200 of the spread of a and b; the best AUC is 0.76
    rng = np.random.default_rng(10)
    a_ref, a_gen = rng.uniform(0, 10, 4000), rng.uniform(0, 10, 4000)
    ref = np.stack([a_ref, a_ref + rng.normal(0, 0.015, 4000)], axis=1)
    gen = np.stack([a_gen, a_gen + rng.normal(0.015, 0.015, 4000)], axis=1)
    result = classifier_test(ref, gen, config=FAST, random_state=0)
    assert result.auc > 0.7


def test_classifier_is_reproducible_and_checks_input():
    rng = np.random.default_rng(5)
    ref, gen = rng.normal(size=(500, 2)), rng.normal(0.3, size=(400, 2))
    first = classifier_test(ref, gen, config=FAST, random_state=7)
    assert first == classifier_test(ref, gen, config=FAST, random_state=7)
    assert first.n_train + first.n_validation + first.n_test == 800  # truncated to 400 each
    with pytest.raises(ValueError, match="too few events"):
        classifier_test(ref[:20], gen[:20], config=FAST)
    with pytest.raises(ValueError, match="3 columns"):
        classifier_test(ref, rng.normal(size=(400, 3)), config=FAST)
    with pytest.raises(ValueError, match="split"):
        ClassifierConfig(split=(0.5, 0.5))
    with pytest.raises(ValueError, match="preprocessing 'pca'"):
        ClassifierConfig(preprocessing="pca")


def test_challenge_classifier_setting():
    config = ClassifierConfig.challenge()
    assert (config.n_hidden_layers, config.width, config.preprocessing) == (3, 2048, "none")
    assert config.training.learning_rate == 2e-4


def test_classifier_inputs():
    data = ShowerData(
        energies=np.array([100.0, 1000.0]), showers=np.array([[50.0, 0.5], [10.0, 20.0]])
    )
    low = low_level_inputs(data)
    np.testing.assert_allclose(low, [[2.0, 0.5, 0.0], [3.0, 0.01, 0.02]])
    features = pd.DataFrame(
        {
            "E_tot_over_E_inc": [0.5, 0.03],
            "E_tot": [50.0, 30.0],
            "E_layer_0": [50.0, 0.0],
            "EC_eta_layer_0": [-20.0, 10.0],
            "sparsity_layer_0": [0.5, 0.0],
        }
    )
    high = high_level_inputs(features, data.energies)
    np.testing.assert_allclose(
        high,
        # the challenge's order: E_inc, layer energies, centres, E_tot, sparsities
        [[2.0, np.log10(50), -0.2, np.log10(50), 0.5], [3.0, -8.0, 0.1, np.log10(30), 0.0]],
    )
    with pytest.raises(ValueError, match="3 incident energies for 2 feature rows"):
        high_level_inputs(features, np.ones(3))
    with pytest.raises(KeyError, match="none of the high-level"):
        high_level_inputs(features[["E_tot_over_E_inc"]], data.energies)


FPD_FAST = {"min_samples": 1000, "max_samples": 4000, "num_batches": 5, "num_points": 4}


def test_fpd_is_small_for_one_distribution_and_larger_when_shifted():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(8000, 5))
    same = frechet_physics_distance(real, rng.normal(size=(8000, 5)), **FPD_FAST)
    shifted = rng.normal(size=(8000, 5))
    shifted[:, 0] += 0.5
    moved = frechet_physics_distance(real, shifted, **FPD_FAST)
    # features are scaled by max |x| (about 4 sigma): a 0.5 sigma shift adds about (0.5/4)^2
    assert same.value < 2e-3
    assert moved.value > 8e-3 > 4 * same.value
    assert moved.error >= 0.0


def test_fpd_matches_the_gaussian_formula():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40_000, 2)), rng.normal(1.0, 2.0, size=(40_000, 2))
    # |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) = 2 + 2 (1 + 4 - 4) = 4
    settings = {"min_samples": 5000, "max_samples": 20_000, "num_batches": 10, "num_points": 4}
    fpd = frechet_physics_distance(x, y, normalise=False, **settings)
    # the extrapolation error is about 0.05 with these batches
    assert fpd.value == pytest.approx(4.0, abs=0.15)
    assert 0.0 < fpd.error < 0.15
    assert frechet_physics_distance(x, y, random_state=1, **FPD_FAST) != frechet_physics_distance(
        x, y, random_state=2, **FPD_FAST
    )


def test_kpd_is_the_unbiased_polynomial_mmd_of_jetnet():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(300, 3)), rng.normal(0.5, size=(300, 3))
    kpd = kernel_physics_distance(x, y, num_batches=1, batch_size=200, normalise=False)
    draw = np.random.default_rng(42)  # jetnet's batch seed: random_state + 1000 * batch
    xs, ys = x[draw.choice(300, size=200)], y[draw.choice(300, size=200)]
    kxx, kyy = (polynomial_kernel(a, degree=4, gamma=1 / 3, coef0=1) for a in (xs, ys))
    kxy = polynomial_kernel(xs, ys, degree=4, gamma=1 / 3, coef0=1)
    n = 200
    expected = (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )
    assert kpd.value == pytest.approx(expected, rel=1e-9)
    assert kpd.error == 0.0


def test_kpd_separates_shifted_samples():
    rng = np.random.default_rng(9)
    real = rng.normal(size=(4000, 4))
    same = kernel_physics_distance(real, rng.normal(size=(4000, 4)), num_batches=5, batch_size=1000)
    moved = kernel_physics_distance(
        real, rng.normal(0.5, size=(4000, 4)), num_batches=5, batch_size=1000
    )
    assert abs(same.value) < 3 * same.error + 1e-3
    assert moved.value > 10 * max(abs(same.value), same.error)


def test_distance_input_checks():
    x = np.ones((10, 2))
    with pytest.raises(ValueError, match="3 columns"):
        frechet_physics_distance(x, np.ones((10, 3)))
    with pytest.raises(ValueError, match="min_samples"):
        frechet_physics_distance(x, x, min_samples=100, max_samples=10)
    with pytest.raises(ValueError, match="NaN"):
        kernel_physics_distance(np.full((10, 2), np.nan), x)
    with pytest.raises(ValueError, match="batch_size"):
        kernel_physics_distance(x, x, batch_size=1)


def test_challenge_separation_powers_use_fixed_bins_and_drop_outliers():
    from generative.calo.geometry import load_dataset_geometry
    from generative.calo.io import ShowerData
    from generative.calo.metrics import challenge_separation_powers

    geometry = load_dataset_geometry("1-photons")
    rng = np.random.default_rng(0)
    energies = np.repeat(2.0 ** np.arange(8, 23), 40)
    showers = rng.gamma(1.0, 1.0, (len(energies), 368)) * energies[:, None] / 368
    showers[showers < 2.0] = 0.0
    data = ShowerData(energies=energies, showers=showers)
    same = challenge_separation_powers(data, data, geometry)
    finite = [v for v in same.values() if np.isfinite(v)]
    assert len(finite) > 20
    assert max(finite) == 0.0
    # showers at 3x the energy: E_tot / E_inc lands outside [0.5, 1.5] and is not counted
    hot = ShowerData(energies=energies, showers=3.0 * showers)
    apart = challenge_separation_powers(data, hot, geometry)
    assert apart["E_layer_1"] > 0.1
    assert {"voxel_energy", "E_tot_over_E_inc_at_256_MeV", "width_phi_layer_2"} <= set(apart)
