"""Defaults shared by the configuration and the Python API, defined once and cheap to import."""

from __future__ import annotations

__all__ = ["DEFAULT_EFFICIENCIES", "DEFAULT_FEATURES"]

#: the auxiliary features of the LHCO R&D benchmark (CATHODE paper): analysis.data.FEATURES names
DEFAULT_FEATURES: tuple[str, ...] = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
#: selection efficiencies of the bump hunt (CWoLa hunting's 10%, 1%, 0.2% and no cut)
DEFAULT_EFFICIENCIES: tuple[float, ...] = (1.0, 0.1, 0.01, 0.002)
