"""A registry of named event features computed from a table in the LHCO R&D layout.

Units and conventions (those of the CATHODE / LHC Olympics literature):

- ``mjj``, jet masses and jet pT are in **TeV** in the features table (the raw layout is GeV),
  so signal regions read as in the papers (e.g. 3.3-3.7 TeV).
- Substructure features order the two jets **by mass**: ``j1`` is the lighter jet, ``j2`` the
  heavier one (the raw layout's ``j1`` is the leading-pT jet). A tie keeps the raw order.
- N-subjettiness ratios ``tau21 = tau2/tau1`` and ``tau32 = tau3/tau2`` are
  ``ZERO_DENOMINATOR_VALUE`` (0) when the denominator is 0: such a jet has all its energy along
  one axis, so its higher taus vanish too and the ratio's limit along the physical path is 0.

Add a feature with ``@register_feature("name")`` on a function of the raw DataFrame that
returns one value per row; ``build_features(raw, features=(..., "name"))`` then uses it.

``build_features(raw, mass_shift=0.1)`` is the CATHODE paper's correlated-feature test
(arXiv:2109.00546): both jet masses become ``m_J + 0.1 * mjj`` before any feature but ``mjj`` is
computed, so ``mj1`` and ``mj2`` grow with ``mjj`` while ``delta_mj``, the tau ratios, the jet
pT and ``mjj`` itself are those of the unshifted jets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from analysis.data.validation import LABEL_COLUMN, validate_lhco
from analysis.defaults import DEFAULT_FEATURES

FeatureFunction = Callable[[pd.DataFrame], np.ndarray]

#: Registered features: name -> function of the raw (GeV) table returning one value per row.
FEATURES: dict[str, FeatureFunction] = {}
#: Value of a tau ratio whose denominator is zero.
ZERO_DENOMINATOR_VALUE = 0.0
#: Name of the resonant feature, always the first column of a features table.
MJJ = "mjj"

_GEV_PER_TEV = 1000.0


def register_feature(
    name: str, *, replace: bool = False
) -> Callable[[FeatureFunction], FeatureFunction]:
    """Decorator adding a function of the raw table to ``FEATURES`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"a feature name must be a non-empty string, got {name!r}")
    if name == LABEL_COLUMN:
        raise ValueError(f"'{LABEL_COLUMN}' is reserved for the truth label")

    def decorator(func: FeatureFunction) -> FeatureFunction:
        if name in FEATURES and not replace:
            raise ValueError(f"feature '{name}' is already registered (pass replace=True)")
        FEATURES[name] = func
        return func

    return decorator


def build_features(
    raw: pd.DataFrame, features: Sequence[str] = DEFAULT_FEATURES, *, mass_shift: float = 0.0
) -> pd.DataFrame:
    """Features table of a validated raw table: ``mjj``, then ``features``, then ``label`` if any.

    Rows and index are those of ``raw``; ``label`` becomes int64. ``mass_shift`` > 0 computes
    every feature but ``mjj`` from ``shift_jet_masses(raw, mass_shift)``.
    """
    if isinstance(features, str):
        raise TypeError(f"features must be a sequence of names, got the string {features!r}")
    names = [MJJ, *(f for f in features if f != MJJ)]
    unknown = [f for f in names if f not in FEATURES]
    if unknown:
        raise KeyError(f"unknown feature(s) {unknown}; registered: {sorted(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"features repeat a name: {list(features)}")
    _check_mass_shift(mass_shift)
    validate_lhco(raw)
    shifted = _shift_jet_masses(raw, mass_shift) if mass_shift else raw
    columns = {}
    for name in names:
        values = np.asarray(FEATURES[name](raw if name == MJJ else shifted), dtype=np.float64)
        if values.shape != (len(raw),):
            raise ValueError(
                f"feature '{name}' returned shape {values.shape}, expected ({len(raw)},)"
            )
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ValueError(f"feature '{name}' is NaN or inf in {bad} of {len(raw)} rows")
        columns[name] = values
    if LABEL_COLUMN in raw.columns:
        columns[LABEL_COLUMN] = raw[LABEL_COLUMN].to_numpy().astype(np.int64)
    return pd.DataFrame(columns, index=raw.index)


def shift_jet_masses(raw: pd.DataFrame, mass_shift: float) -> pd.DataFrame:
    """A copy of a raw table with both jet masses raised by ``mass_shift`` times its ``mjj``."""
    _check_mass_shift(mass_shift)
    validate_lhco(raw)
    return _shift_jet_masses(raw, mass_shift)


def _shift_jet_masses(raw: pd.DataFrame, mass_shift: float) -> pd.DataFrame:
    # Both jets get the same shift, so the mass order (lighter / heavier jet) is unchanged.
    shift_gev = mass_shift * FEATURES[MJJ](raw) * _GEV_PER_TEV
    return raw.assign(mj1=_col(raw, "mj1") + shift_gev, mj2=_col(raw, "mj2") + shift_gev)


def _check_mass_shift(mass_shift: object) -> None:
    if isinstance(mass_shift, bool) or not isinstance(mass_shift, (int, float, np.number)):
        raise TypeError(f"mass_shift must be a number (a factor of mjj), got {mass_shift!r}")
    if not (np.isfinite(mass_shift) and mass_shift >= 0):
        raise ValueError(f"mass_shift must be finite and >= 0 (0 = off), got {mass_shift}")


def _col(raw: pd.DataFrame, name: str) -> np.ndarray:
    return raw[name].to_numpy(dtype=np.float64)


def _order_by_mass(
    raw: pd.DataFrame, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(lighter jet, heavier jet) values, given the values of the raw j1 and j2."""
    swap = _col(raw, "mj1") > _col(raw, "mj2")
    return np.where(swap, second, first), np.where(swap, first, second)


def _by_mass(raw: pd.DataFrame, quantity: str) -> tuple[np.ndarray, np.ndarray]:
    """(lighter jet, heavier jet) values of a per-jet raw column such as ``tau2``."""
    return _order_by_mass(raw, _col(raw, f"{quantity}j1"), _col(raw, f"{quantity}j2"))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full_like(numerator, ZERO_DENOMINATOR_VALUE)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _pt(raw: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Transverse momenta (GeV) of the raw j1 and j2."""
    return tuple(np.hypot(_col(raw, f"px{j}"), _col(raw, f"py{j}")) for j in ("j1", "j2"))


@register_feature(MJJ)
def dijet_mass(raw: pd.DataFrame) -> np.ndarray:
    """Invariant mass of the two jets (TeV) from their momenta and masses."""
    px, py, pz = (_col(raw, f"p{a}j1") + _col(raw, f"p{a}j2") for a in "xyz")
    energy = sum(
        np.sqrt(
            _col(raw, f"px{j}") ** 2
            + _col(raw, f"py{j}") ** 2
            + _col(raw, f"pz{j}") ** 2
            + _col(raw, f"m{j}") ** 2
        )
        for j in ("j1", "j2")
    )
    # Rounding can push m^2 of two nearly massless, collinear jets a hair below zero.
    m2 = np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0)
    return np.sqrt(m2) / _GEV_PER_TEV


@register_feature("mj1")
def lighter_jet_mass(raw: pd.DataFrame) -> np.ndarray:
    """Mass of the lighter jet (TeV)."""
    return np.minimum(_col(raw, "mj1"), _col(raw, "mj2")) / _GEV_PER_TEV


@register_feature("mj2")
def heavier_jet_mass(raw: pd.DataFrame) -> np.ndarray:
    """Mass of the heavier jet (TeV)."""
    return np.maximum(_col(raw, "mj1"), _col(raw, "mj2")) / _GEV_PER_TEV


@register_feature("delta_mj")
def jet_mass_difference(raw: pd.DataFrame) -> np.ndarray:
    """Heavier minus lighter jet mass (TeV), >= 0."""
    return np.abs(_col(raw, "mj2") - _col(raw, "mj1")) / _GEV_PER_TEV


def _tau_ratio(numerator: str, denominator: str, jet: int) -> FeatureFunction:
    def feature(raw: pd.DataFrame) -> np.ndarray:
        return _ratio(_by_mass(raw, numerator)[jet], _by_mass(raw, denominator)[jet])

    which = ("lighter", "heavier")[jet]
    feature.__doc__ = f"{numerator}/{denominator} of the {which} jet (0 if {denominator} is 0)."
    return feature


register_feature("tau21_j1")(_tau_ratio("tau2", "tau1", 0))
register_feature("tau21_j2")(_tau_ratio("tau2", "tau1", 1))
register_feature("tau32_j1")(_tau_ratio("tau3", "tau2", 0))
register_feature("tau32_j2")(_tau_ratio("tau3", "tau2", 1))


@register_feature("pt_j1")
def lighter_jet_pt(raw: pd.DataFrame) -> np.ndarray:
    """Transverse momentum of the lighter jet (TeV)."""
    return _order_by_mass(raw, *_pt(raw))[0] / _GEV_PER_TEV


@register_feature("pt_j2")
def heavier_jet_pt(raw: pd.DataFrame) -> np.ndarray:
    """Transverse momentum of the heavier jet (TeV)."""
    return _order_by_mass(raw, *_pt(raw))[1] / _GEV_PER_TEV
