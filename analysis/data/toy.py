"""The built-in toy: seeded dijet events in the exact LHCO R&D layout (GeV), fast and QCD-shaped.

Background (calibrated by eye on Pythia QCD dijets at 13 TeV in this layout):

- ``mjj`` follows the dijet function ``(1-x)^p1 / x^(p2 + p3 ln x)``, ``x = mjj / 13 TeV``, times
  an error-function trigger turn-on at 2.48 TeV, between 2 and 8 TeV (peak near 2.7 TeV, about
  14% of the events in 3.3-3.7 TeV).
- Each jet's ``rho = m / pT`` is log-normal, so jet masses **scale with mjj** (through pT); the
  N-subjettiness ratios fall with ``rho`` as in QCD, so they depend on ``mjj`` at fixed jet mass.
  A method that ignores these correlations sculpts the background.

Signal (``ToySignal``): a resonance of Gaussian mass peak decaying to two jets of given masses
with two-prong substructure (low tau21). Each single feature overlaps the background; only the
combination isolates it.

Both: the dijet system gets a Gaussian rapidity and an exponential transverse kick (radiation),
so jets are not back to back; raw ``j1`` is the leading-pT jet as in the R&D files. Gaussian
draws are truncated at 4 sigma so no event is unphysical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import erf, ndtr, ndtri

from analysis.data.validation import LHCO_COLUMNS

_SQRT_S = 13.0  # TeV
# Dijet function and trigger turn-on (a Poisson fit to Pythia QCD dijets in this layout).
_DIJET_P = (7.88, 5.25, 1.22)
_TURN_ON_TEV, _TURN_ON_WIDTH_TEV = 2.48, 0.27
_MJJ_RANGE_TEV = (2.0, 8.0)
# |cos theta*| < sqrt(1 - (M0/mjj)^2) mimics the leading-jet pT threshold of the trigger.
_ACCEPTANCE_M0_TEV, _COS_MIN, _COS_MAX = 2.4, 0.2, 0.9
_RAPIDITY_SIGMA = 0.5
_KICK_MEAN_GEV = 120.0
# QCD jets: log(rho) ~ N(mean, sd), rho <= 0.5; tau1 = a rho^b exp(sd z); tau ratios ~ Beta.
_LOG_RHO_MEAN, _LOG_RHO_SD, _RHO_MAX = -2.15, 0.68, 0.5
_TAU1_A, _TAU1_B, _TAU1_SD = 1.44, 1.54, 0.36
_BETA_CONCENTRATION = 5.0
_SIGNAL_TAU21_CONCENTRATION = 8.0
_TRUNCATION_SIGMA = 4.0
_GEV_PER_TEV = 1000.0


@dataclass(frozen=True)
class ToySignal:
    """A resonance mjj -> two jets of masses mj1, mj2 (TeV) with two-prong substructure."""

    mjj: float = 3.5
    width: float = 0.15  # Gaussian sigma of the reconstructed mjj peak (TeV)
    mj1: float = 0.1
    mj2: float = 0.5
    mass_resolution: float = 0.06  # relative (log-normal) smearing of each jet mass
    tau21: float = 0.3  # mean tau2/tau1 of the signal jets (QCD jets: 0.35-0.85)
    tau32: float = 0.75  # mean tau3/tau2 of the signal jets

    def check(self) -> None:
        """Raise ValueError if the parameters do not describe a physical resonance."""
        positive = {"mjj": self.mjj, "width": self.width, "mj1": self.mj1, "mj2": self.mj2}
        bad = {k: v for k, v in positive.items() if not v > 0}
        if bad or not self.mass_resolution >= 0:
            raise ValueError(f"ToySignal needs positive masses and widths, got {self}")
        if not (0 < self.tau21 < 1 and 0 < self.tau32 < 1):
            raise ValueError(f"ToySignal tau21 and tau32 must lie in (0, 1), got {self}")
        heaviest_jets = (self.mj1 + self.mj2) * np.exp(_TRUNCATION_SIGMA * self.mass_resolution)
        if self.mjj - _TRUNCATION_SIGMA * self.width <= heaviest_jets:
            raise ValueError(
                f"ToySignal mjj - {_TRUNCATION_SIGMA:g} width = "
                f"{self.mjj - _TRUNCATION_SIGMA * self.width:.3g} TeV cannot produce "
                f"two jets of {self.mj1} + {self.mj2} TeV (with resolution)"
            )


def make_toy(
    n_background: int,
    n_signal: int = 0,
    *,
    signal: ToySignal | None = None,
    random_state: int | np.random.Generator | np.random.SeedSequence | None = None,
) -> pd.DataFrame:
    """Shuffled toy events in the LHCO R&D layout (GeV, float64, ``label`` 0/1)."""
    for name, n in (("n_background", n_background), ("n_signal", n_signal)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {n!r}")
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    signal = ToySignal() if signal is None else signal
    signal.check()
    rng = np.random.default_rng(random_state)
    labels = np.repeat([0.0, 1.0], [n_background, n_signal])
    rng.shuffle(labels)
    is_signal = labels == 1
    parts = (
        (~is_signal, _background(int(n_background), rng)),
        (is_signal, _signal(int(n_signal), signal, rng)),
    )
    # One Fortran-ordered block filled in place: pandas adopts it without copying or gathering.
    values = np.empty((len(labels), len(LHCO_COLUMNS)), order="F")
    for j, name in enumerate(LHCO_COLUMNS[:-1]):
        for rows, part in parts:
            values[rows, j] = part[name]
    values[:, -1] = labels
    return pd.DataFrame(values, columns=list(LHCO_COLUMNS), copy=False)


def dijet_density(mjj_tev: np.ndarray) -> np.ndarray:
    """Unnormalised toy background mjj density (dijet function times trigger turn-on)."""
    x = np.asarray(mjj_tev, dtype=np.float64) / _SQRT_S
    p1, p2, p3 = _DIJET_P
    turn_on = 0.5 * (1 + erf((x * _SQRT_S - _TURN_ON_TEV) / _TURN_ON_WIDTH_TEV))
    return (1 - x) ** p1 / x ** (p2 + p3 * np.log(x)) * turn_on


def _background(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    grid = np.linspace(*_MJJ_RANGE_TEV, 4097)
    pdf = dijet_density(grid)
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2)])
    mjj = np.interp(rng.random(n), cdf / cdf[-1], grid) * _GEV_PER_TEV
    cos_theta = _cos_theta(mjj, rng)
    pt_nominal = mjj / 2 * np.sqrt(1 - cos_theta**2)
    z_max = (np.log(_RHO_MAX) - _LOG_RHO_MEAN) / _LOG_RHO_SD
    masses = [
        pt_nominal * np.exp(_truncated_normal(_LOG_RHO_MEAN, _LOG_RHO_SD, -np.inf, z_max, n, rng))
        for _ in range(2)
    ]
    jets = _two_jets(mjj, masses[0], masses[1], cos_theta, rng)
    for jet in jets:
        log_rho = np.log(jet["m"] / np.hypot(jet["px"], jet["py"]))
        # Mean ratios fall with m/pT as in Pythia QCD (0.85 at rho = 0.02, 0.35 at rho = 0.35).
        tau21_mean = np.clip(0.15 - 0.19 * log_rho, 0.15, 0.9)
        tau32_mean = np.clip(0.5 - 0.1 * log_rho, 0.3, 0.92)
        jet.update(_taus(log_rho, tau21_mean, _BETA_CONCENTRATION, tau32_mean, rng))
    return _layout(jets)


def _signal(n: int, signal: ToySignal, rng: np.random.Generator) -> dict[str, np.ndarray]:
    cut = _TRUNCATION_SIGMA
    mjj = _truncated_normal(signal.mjj, signal.width, -cut, cut, n, rng)
    masses = [
        m * np.exp(_truncated_normal(0.0, signal.mass_resolution, -cut, cut, n, rng))
        for m in (signal.mj1, signal.mj2)
    ]
    jets = _two_jets(
        mjj * _GEV_PER_TEV,
        masses[0] * _GEV_PER_TEV,
        masses[1] * _GEV_PER_TEV,
        _cos_theta(mjj * _GEV_PER_TEV, rng),
        rng,
    )
    for jet in jets:
        log_rho = np.log(jet["m"] / np.hypot(jet["px"], jet["py"]))
        jet.update(_taus(log_rho, signal.tau21, _SIGNAL_TAU21_CONCENTRATION, signal.tau32, rng))
    return _layout(jets)


def _cos_theta(mjj_gev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ratio = np.minimum(_ACCEPTANCE_M0_TEV * _GEV_PER_TEV / mjj_gev, 1.0)
    cos_max = np.clip(np.sqrt(1 - ratio**2), _COS_MIN, _COS_MAX)
    return rng.uniform(-1.0, 1.0, len(mjj_gev)) * cos_max


def _two_jets(
    mjj: np.ndarray,
    m_a: np.ndarray,
    m_b: np.ndarray,
    cos_theta: np.ndarray,
    rng: np.random.Generator,
) -> list[dict[str, np.ndarray]]:
    """Two jets of masses m_a, m_b and invariant mass mjj (GeV), boosted like a dijet system."""
    n = len(mjj)
    p_star = np.sqrt((mjj**2 - (m_a + m_b) ** 2) * (mjj**2 - (m_a - m_b) ** 2)) / (2 * mjj)
    sin_theta = np.sqrt(1 - cos_theta**2)
    phi = rng.uniform(0, 2 * np.pi, n)
    direction = np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta])
    kick = rng.exponential(_KICK_MEAN_GEV, n)
    kick_phi = rng.uniform(0, 2 * np.pi, n)
    m_t = np.hypot(mjj, kick)
    rapidity = _RAPIDITY_SIGMA * rng.standard_normal(n)
    energy = m_t * np.cosh(rapidity)
    beta = np.stack([kick * np.cos(kick_phi), kick * np.sin(kick_phi), m_t * np.sinh(rapidity)])
    beta /= energy
    jets = []
    for mass, sign in ((m_a, 1.0), (m_b, -1.0)):
        momentum = sign * p_star * direction
        p = _boost(np.hypot(p_star, mass), momentum, beta)
        jets.append({"px": p[0], "py": p[1], "pz": p[2], "m": mass})
    # The R&D layout's j1 is the leading-pT jet.
    swap = np.hypot(jets[1]["px"], jets[1]["py"]) > np.hypot(jets[0]["px"], jets[0]["py"])
    first = {k: np.where(swap, jets[1][k], v) for k, v in jets[0].items()}
    second = {k: np.where(swap, jets[0][k], v) for k, v in jets[1].items()}
    return [first, second]


def _boost(energy: np.ndarray, momentum: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Momentum[3, n] of four-vectors (energy, momentum) boosted by velocities beta[3, n]."""
    gamma = 1 / np.sqrt(1 - np.sum(beta**2, axis=0))
    beta_p = np.sum(beta * momentum, axis=0)
    # gamma^2/(gamma+1) equals (gamma-1)/beta^2 without dividing by zero at rest.
    return momentum + (gamma**2 / (gamma + 1) * beta_p + gamma * energy) * beta


def _taus(
    log_rho: np.ndarray,
    tau21_mean: np.ndarray | float,
    tau21_concentration: float,
    tau32_mean: np.ndarray | float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    n = len(log_rho)
    tau1 = _TAU1_A * np.exp(_TAU1_B * log_rho + _TAU1_SD * rng.standard_normal(n))
    tau21 = _beta(tau21_mean, tau21_concentration, n, rng)
    tau32 = _beta(tau32_mean, _BETA_CONCENTRATION, n, rng)
    return {"tau1": tau1, "tau2": tau1 * tau21, "tau3": tau1 * tau21 * tau32}


def _beta(
    mean: np.ndarray | float, concentration: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    mean = np.broadcast_to(mean, (n,))
    return rng.beta(mean * concentration, (1 - mean) * concentration)


def _truncated_normal(
    mean: float, sigma: float, z_low: float, z_high: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Normal draws between mean + z_low sigma and mean + z_high sigma, by inverse CDF."""
    u = rng.uniform(ndtr(z_low), ndtr(z_high), n)
    return mean + sigma * ndtri(u)


def _layout(jets: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {
        f"{quantity}j{i}": jet[quantity]
        for i, jet in enumerate(jets, start=1)
        for quantity in ("px", "py", "pz", "m", "tau1", "tau2", "tau3")
    }
