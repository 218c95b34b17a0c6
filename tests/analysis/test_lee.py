"""Look-elsewhere effect: global significance from background-only pseudo-experiments."""

import numpy as np
import pytest
from scipy import stats

from analysis.executor import ProcessPoolExecutor
from analysis.stats.dijet import fixed_width_edges, sample_dijet
from analysis.stats.lee import look_elsewhere
from analysis.stats.null import background_only_model
from analysis.stats.scan import ScanConfig, scan_spectra
from analysis.stats.selection import select_spectra

EDGES = fixed_width_edges(2.6, 6.0)
SHAPE = np.array([0.0, 7.88, 5.25, 1.22])
WINDOWS = [(c - 0.2, c + 0.2) for c in (3.1, 3.3, 3.5, 3.7, 3.9, 4.1)]
CONFIG = ScanConfig(efficiencies=(1.0, 0.1), n_params=4)


def spectra(seed: int, n_signal: int = 0):
    rng = np.random.default_rng(seed)
    mjj = np.r_[
        sample_dijet(100_000, SHAPE, EDGES[0], EDGES[-1], rng), rng.normal(3.5, 0.1, n_signal)
    ]
    scores = np.r_[rng.random(100_000), 1.0 - 0.01 * rng.random(n_signal)]
    return select_spectra(mjj, scores, WINDOWS, EDGES, CONFIG.efficiencies)


def test_background_only_data_give_no_global_excess():
    """Background-only data: no global excess, whichever method (toys or extrapolation) gives it."""
    result = look_elsewhere(spectra(seed=1), CONFIG, n_pseudo=40, random_state=1)
    assert result.global_significance < 2
    assert result.method in ("pseudo-experiments", "gross-vitells", "bonferroni")
    assert result.n_exceeding > 0
    # Many correlated cells: the trials factor exceeds 1 but not the number of cells.
    assert 1 < result.trials_factor < len(WINDOWS) * len(CONFIG.efficiencies)
    assert result.failed_fit_fraction < 0.01
    assert result.masked_windows == ()


def test_strong_bump_keeps_its_significance_beyond_the_toy_count():
    """A > 6 sigma local excess with 20 pseudo-experiments: extrapolated, not capped at 1.64."""
    result = look_elsewhere(spectra(seed=2, n_signal=600), CONFIG, n_pseudo=20, random_state=2)
    assert result.observed_significance > 6
    assert result.n_exceeding == 0
    assert result.toy_p_value == pytest.approx(1 / 20)
    assert result.method in ("gross-vitells", "bonferroni")
    bonferroni = stats.norm.isf(result.n_tested_cells * result.local_p_value)
    assert result.global_significance >= bonferroni - 1e-9
    assert result.global_significance > result.observed_significance - 1
    # The excess's window is masked out of the background-only null.
    assert result.best_cell[0] in result.masked_windows


def test_trials_factor_uncertainty_is_binomial():
    result = look_elsewhere(spectra(seed=3), CONFIG, n_pseudo=30, random_state=3)
    p = result.n_exceeding / 30
    assert result.global_p_value == pytest.approx(p)
    assert result.global_p_value_error == pytest.approx(np.sqrt(p * (1 - p) / 30))
    assert result.trials_factor_error == pytest.approx(
        result.global_p_value_error / result.local_p_value
    )
    assert set(result.to_dict()) >= {"global_significance", "trials_factor", "is_limit"}


def test_same_seed_same_result_whatever_the_executor():
    data = spectra(seed=4)
    in_process = look_elsewhere(data, CONFIG, n_pseudo=8, random_state=7, batch_size=3)
    pooled = look_elsewhere(
        data, CONFIG, n_pseudo=8, random_state=7, batch_size=3, executor=ProcessPoolExecutor(2)
    )
    other_seed = look_elsewhere(data, CONFIG, n_pseudo=8, random_state=8, batch_size=3)
    np.testing.assert_array_equal(in_process.max_significances, pooled.max_significances)
    assert not np.array_equal(in_process.max_significances, other_seed.max_significances)


def test_null_model_resamples_nested_spectra_around_the_fits():
    data = spectra(seed=5)
    null = background_only_model(data, CONFIG)
    assert null.n_fallbacks == 0
    rng = np.random.default_rng(0)
    draws = [null.sample(rng) for _ in range(300)]
    inclusive = np.array([d.inclusive for d in draws])
    # Mean of 300 Poisson draws within 5 standard errors of the fitted mean in every bin.
    assert np.all(
        np.abs(inclusive.mean(0) - null.inclusive_mean)
        < 5 * np.sqrt(null.inclusive_mean / 300) + 1e-9
    )
    for d in draws[:20]:
        np.testing.assert_array_equal(
            d.counts[:, 0], np.broadcast_to(d.inclusive, d.counts[:, 0].shape)
        )
        assert np.all(d.counts[:, 1] <= d.counts[:, 0])


def test_bad_arguments():
    data = spectra(seed=6)
    with pytest.raises(ValueError, match="positive"):
        look_elsewhere(data, CONFIG, n_pseudo=0)
    observed = scan_spectra(data, ScanConfig(efficiencies=(1.0, 0.1), n_params=3))
    with pytest.raises(ValueError, match="the observed scan used"):
        look_elsewhere(data, CONFIG, n_pseudo=2, observed=observed)
