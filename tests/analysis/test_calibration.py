"""Calibration of the bump hunt's statistics on background-only spectra (pure statistics, fast).

Each property is checked by one helper that the test of the real method and a test of a
deliberately broken method both call: the first must pass, the second must fail, so the
check can tell a calibrated statistic from a broken one.
"""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from analysis.stats import lee as lee_module
from analysis.stats import null as null_module
from analysis.stats.dijet import dijet_bin_integrals, fixed_width_edges, sample_dijet
from analysis.stats.lee import look_elsewhere
from analysis.stats.null import pseudo_scan
from analysis.stats.scan import ScanConfig, scan_spectra
from analysis.stats.selection import select_spectra
from analysis.stats.upcrossings import excursion_counts, extrapolate_global

EDGES = fixed_width_edges(2.7, 4.7)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
WINDOWS = [(3.1, 3.5), (3.4, 3.8), (3.7, 4.1)]
CONFIG = ScanConfig(efficiencies=(1.0, 0.1), n_params=3)
N_EVENTS = 20_000
N_DATASETS = 200
N_PSEUDO = 100


def background_spectra(rng, n_events=N_EVENTS):
    """Selected spectra of background-only events whose scores do not depend on mjj."""
    mjj = sample_dijet(rng.poisson(n_events), SHAPE, EDGES[0], EDGES[-1], rng)
    return select_spectra(mjj, rng.random(mjj.size), WINDOWS, EDGES, CONFIG.efficiencies)


def global_p_values(n_datasets=N_DATASETS, seed=0):
    """Reported global p-value of each of `n_datasets` independent background-only data sets."""
    seeds = np.random.SeedSequence(seed).spawn(n_datasets)
    out = []
    for s in seeds:
        data_seed, lee_seed = s.spawn(2)
        spectra = background_spectra(np.random.default_rng(data_seed))
        result = look_elsewhere(spectra, CONFIG, n_pseudo=N_PSEUDO, random_state=lee_seed)
        out.append(result.global_p_value)
    return np.array(out)


def uniformity(p_values):
    """KS p-value against U(0, 1) and the fraction below 0.05."""
    return stats.kstest(p_values, "uniform").pvalue, float(np.mean(p_values < 0.05))


def assert_uniform(p_values):
    """KS at 1%: with 200 values it rejects a CDF p^0.7 (2.5x too many p < 0.05) with 91%
    power (4000 simulated samples). The fraction below 0.05 lies in [0.01, 0.10], the
    binomial 99.9% interval of 200 draws at 0.05."""
    ks_p, below = uniformity(p_values)
    assert ks_p > 0.01, f"global p-values not uniform: KS p = {ks_p:.3g}"
    assert 0.01 <= below <= 0.10, f"{below:.3f} of the global p-values lie below 0.05"


def test_global_p_values_of_background_only_data_are_uniform():
    assert_uniform(global_p_values())


def test_uniformity_check_fails_for_a_null_that_ignores_the_look_elsewhere_effect(monkeypatch):
    """Broken on purpose: pseudo-experiments that scan one of the six cells only."""
    original = lee_module.pseudo_scan

    def fewer_trials(*args, **kwargs):
        maps = original(*args, **kwargs)
        one = np.full_like(maps, np.nan)
        one[:, 1, 1] = maps[:, 1, 1]
        return one

    monkeypatch.setattr(lee_module, "pseudo_scan", fewer_trials)
    with pytest.raises(AssertionError, match=r"not uniform|below 0\.05"):
        assert_uniform(global_p_values(n_datasets=100, seed=1))


def fixed_cell_significances(n=3000, seed=3, drop_background_uncertainty=False):
    """Signed local Z of cell (window 1, efficiency 0.1) on n background-only data sets."""
    rng = np.random.default_rng(seed)
    spectra = background_spectra(rng)
    mu = dijet_bin_integrals(EDGES, SHAPE)
    mu *= N_EVENTS / mu.sum()
    inclusive = rng.poisson(mu, (n, mu.size)).astype(float)
    counts = np.stack([inclusive, rng.binomial(inclusive.astype(int), 0.1)], axis=1)
    counts = np.broadcast_to(counts[:, None], (n, len(WINDOWS), 2, mu.size)).copy()
    tested = np.zeros((len(WINDOWS), 2), bool)
    tested[1, 1] = True
    if drop_background_uncertainty:
        fit = null_module.fit_dijet_batch

        def exact_background(*args, **kwargs):
            result = fit(*args, **kwargs)
            return dataclasses.replace(result, covariance=1e-12 * result.covariance)

        null_module.fit_dijet_batch = exact_background
        try:
            return pseudo_scan(spectra, inclusive, counts, CONFIG, tested)[:, 1, 1]
        finally:
            null_module.fit_dijet_batch = fit
    return pseudo_scan(spectra, inclusive, counts, CONFIG, tested)[:, 1, 1]


def assert_standard_normal(z):
    """Mean within 0.1 and width within 1 +- 0.08 (standard errors 0.018 and 0.013 for 3000)."""
    assert np.isfinite(z).mean() > 0.99
    z = z[np.isfinite(z)]
    assert abs(z.mean()) < 0.1, f"mean local Z {z.mean():.3f}"
    assert abs(z.std() - 1) < 0.08, f"width of the local Z {z.std():.3f}"


def test_local_significance_of_a_fixed_cell_is_standard_normal():
    assert_standard_normal(fixed_cell_significances())


def test_normality_check_fails_when_the_background_uncertainty_is_dropped():
    with pytest.raises(AssertionError, match="width"):
        assert_standard_normal(fixed_cell_significances(drop_background_uncertainty=True))


def test_pseudo_scan_reproduces_the_scan_cell_by_cell():
    rng = np.random.default_rng(5)
    spectra = background_spectra(rng)
    draws = [background_spectra(rng) for _ in range(6)]
    inclusive = np.array([d.inclusive for d in draws])
    counts = np.array([d.counts for d in draws])
    batch = pseudo_scan(spectra, inclusive, counts, CONFIG)
    for d, z in zip(draws, batch, strict=True):
        expected = scan_spectra(d, CONFIG).signed_significances
        # MIGRAD's tolerance (edm < 2e-4) against the vectorised Newton's tighter minimum.
        np.testing.assert_allclose(z, expected, atol=0.02)


def correlated_maps(n, rng, n_windows=20, n_effs=3, width=1.5):
    """Gaussian maps correlated along windows (Gaussian kernel) and across efficiencies."""
    noise = rng.standard_normal((n, n_windows + 10, n_effs))
    kernel = np.exp(-0.5 * (np.arange(-5, 6) / width) ** 2)
    smooth = np.apply_along_axis(lambda x: np.convolve(x, kernel, "valid"), 1, noise)
    smooth += 0.7 * smooth[..., :1]
    return smooth / smooth.std(axis=0)


def gv_over_brute_force(maps, brute, z=3.5):
    """Gross-Vitells p from `maps` over the fraction of `brute` maps with max > z."""
    truth = np.mean(brute.max(axis=(1, 2)) > z)
    n_cells = maps[0].size
    return extrapolate_global(maps, z, n_cells=n_cells, random_state=1).p_value / truth


def assert_conservative_within(ratio):
    """The 2-D Euler-characteristic form bounds a discrete grid's p from above: it may
    overestimate (x1.2-1.5 on these maps) but not underestimate beyond the 6% brute-force
    error of 40000 maps at P ~ 0.006."""
    assert 0.9 < ratio < 1.6, f"Gross-Vitells / brute force = {ratio:.2f}"


def test_upcrossing_extrapolation_matches_brute_force_far_in_the_tail():
    rng = np.random.default_rng(7)
    maps = correlated_maps(40_000, rng)
    assert_conservative_within(gv_over_brute_force(maps[:500], maps))
    result = extrapolate_global(maps[:500], 3.5, n_cells=60, random_state=1)
    assert result.method == "gross-vitells"
    assert result.significance_error > 0


def test_extrapolation_fails_the_brute_force_check_if_trials_are_left_out():
    """Broken on purpose: excursions counted at one of the three efficiencies only."""
    rng = np.random.default_rng(7)
    maps = correlated_maps(40_000, rng)
    with pytest.raises(AssertionError, match="brute force"):
        assert_conservative_within(gv_over_brute_force(maps[:500, :, :1], maps))


def test_a_twelve_sigma_local_excess_keeps_a_large_global_significance():
    rng = np.random.default_rng(8)
    result = extrapolate_global(correlated_maps(200, rng), 12.0, n_cells=60, random_state=2)
    assert result.method in ("gross-vitells", "bonferroni")
    # Never more than the Bonferroni bound of 60 cells: global Z >= Phi^-1(1 - 60 Phi(-12)).
    assert result.significance >= stats.norm.isf(60 * stats.norm.sf(12.0)) - 1e-9
    assert result.significance > 11


def test_excursions_count_connected_cells():
    maps = np.array([[[4.0, -1.0], [4.0, -1.0], [-1.0, -1.0], [-1.0, 5.0]]])
    np.testing.assert_array_equal(excursion_counts(maps, [0.0, 4.5, 6.0]), [[2, 1, 0]])


@pytest.mark.parametrize("seed", range(10))
def test_extrapolated_global_significance_never_exceeds_the_local_one(seed):
    """Six cells, 50 null maps: a fitted negative slope made the expectation negative for most
    of these seeds (global Z 37 for a local Z of 8); the bound is then Bonferroni's."""
    maps = np.random.default_rng(seed).standard_normal((50, 2, 3))
    for z in (5.0, 8.0, 13.4):
        result = extrapolate_global(maps, z, n_cells=6, random_state=1)
        assert result.p_value >= stats.norm.sf(z)
        assert result.significance <= z + 1e-9
