"""pyhf models as data: one workspace per search window and selection, saved as JSON."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyhf
from scipy import special

from analysis.regions import Window, as_window
from analysis.stats.dijet import FitResult
from analysis.stats.mismodelling import VARIATION, control_variation
from analysis.stats.template import TemplateBackground
from generative.fileio import write_atomic

__all__ = [
    "CalibratedFit",
    "WindowModel",
    "build_window_model",
    "gaussian_signal",
    "quiet_pyhf",
]

FORMAT = "resonance-search/window-model"
CHANNEL, SIGNAL, BACKGROUND, POI = "window", "signal", "background", "mu"


@contextmanager
def quiet_pyhf() -> Iterator[None]:
    """pyhf's numpy backend, the jsonschema deprecation every pyhf.Model emits silenced.

    The caller's backend and optimiser are restored on leaving.
    """
    # DESIGN: the numpy backend is the supported one (the PyTorch backend is being removed).
    backend, optimizer = pyhf.tensorlib, pyhf.optimizer
    switch = backend.name != "numpy"
    if switch:
        pyhf.set_backend("numpy")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*jsonschema.*", category=DeprecationWarning)
            yield
    finally:
        if switch:
            pyhf.set_backend(backend, optimizer)


def gaussian_signal(edges: np.ndarray, centre: float, resolution: float = 0.05) -> np.ndarray:
    """Fraction of a unit Gaussian (sigma = resolution * centre) falling in each bin."""
    if not resolution > 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    return np.diff(special.ndtr((np.asarray(edges, dtype=float) - centre) / (resolution * centre)))


@dataclass(frozen=True, eq=False)
class WindowModel:
    """Signal-region counts, background with correlated variations, and a signal shape.

    The signal sample holds `signal_reference_yield` events at mu = 1 (counting the part of
    the shape outside the signal region), so the signal yield is mu * signal_reference_yield.
    Background uncertainties are `histosys` modifiers (up/down per variation) plus an
    optional `staterror` (absolute per-bin uncertainties; all zeros means none).
    """

    sr_low: float
    sr_high: float
    edges: np.ndarray
    observed: np.ndarray
    background: np.ndarray
    variation_names: tuple[str, ...]
    background_up: np.ndarray
    background_down: np.ndarray
    staterror: np.ndarray
    signal: np.ndarray
    signal_reference_yield: float
    poi_bounds: tuple[float, float]

    def spec(self) -> dict:
        """The pyhf workspace specification (plain JSON-compatible dict)."""
        modifiers: list[dict] = [
            {
                "name": name,
                "type": "histosys",
                "data": {"hi_data": hi.tolist(), "lo_data": lo.tolist()},
            }
            for name, hi, lo in zip(
                self.variation_names, self.background_up, self.background_down, strict=True
            )
        ]
        if np.any(self.staterror > 0):
            modifiers.append(
                {
                    "name": f"staterror_{CHANNEL}",
                    "type": "staterror",
                    "data": self.staterror.tolist(),
                }
            )
        samples = [
            {
                "name": SIGNAL,
                "data": self.signal.tolist(),
                "modifiers": [{"name": POI, "type": "normfactor", "data": None}],
            },
            {"name": BACKGROUND, "data": self.background.tolist(), "modifiers": modifiers},
        ]
        poi = {"name": POI, "bounds": [list(self.poi_bounds)], "inits": [0.0]}
        return {
            "version": "1.0.0",
            "channels": [{"name": CHANNEL, "samples": samples}],
            "observations": [{"name": CHANNEL, "data": self.observed.tolist()}],
            "measurements": [{"name": "window", "config": {"poi": POI, "parameters": [poi]}}],
        }

    def model(self, poi_bounds: tuple[float, float] | None = None) -> pyhf.pdf.Model:
        """Build the pyhf model; `poi_bounds` overrides the POI range (e.g. (0, hi) for limits)."""
        spec = self.spec()
        if poi_bounds is not None:
            spec["measurements"][0]["config"]["parameters"][0]["bounds"] = [list(poi_bounds)]
        with quiet_pyhf():
            return pyhf.Workspace(spec).model()

    def data(self, model: pyhf.pdf.Model) -> np.ndarray:
        """Observed counts followed by the model's auxiliary data."""
        return np.concatenate([self.observed, model.config.auxdata])

    def to_dict(self) -> dict:
        """JSON-compatible dict: metadata plus the pyhf workspace under "workspace"."""
        return {
            "format": FORMAT,
            "version": 1,
            "signal_region": [self.sr_low, self.sr_high],
            "edges": self.edges.tolist(),
            "signal_reference_yield": self.signal_reference_yield,
            "workspace": self.spec(),
        }

    @classmethod
    def from_dict(cls, payload: dict) -> WindowModel:
        """Rebuild from `to_dict` output (validates the pyhf workspace)."""
        if payload.get("format") != FORMAT:
            raise ValueError(f"not a window model: format is {payload.get('format')!r}")
        spec = payload["workspace"]
        with quiet_pyhf():
            pyhf.Workspace(spec)
        samples = {s["name"]: s for s in spec["channels"][0]["samples"]}
        background = samples[BACKGROUND]
        histosys = [m for m in background["modifiers"] if m["type"] == "histosys"]
        staterror = [m["data"] for m in background["modifiers"] if m["type"] == "staterror"]
        n_bins = len(background["data"])
        (bounds,) = spec["measurements"][0]["config"]["parameters"][0]["bounds"]
        return cls(
            sr_low=float(payload["signal_region"][0]),
            sr_high=float(payload["signal_region"][1]),
            edges=np.asarray(payload["edges"], dtype=float),
            observed=np.asarray(spec["observations"][0]["data"], dtype=float),
            background=np.asarray(background["data"], dtype=float),
            variation_names=tuple(m["name"] for m in histosys),
            background_up=np.asarray([m["data"]["hi_data"] for m in histosys]).reshape(-1, n_bins),
            background_down=np.asarray([m["data"]["lo_data"] for m in histosys]).reshape(
                -1, n_bins
            ),
            staterror=np.asarray(staterror[0] if staterror else np.zeros(n_bins), dtype=float),
            signal=np.asarray(samples[SIGNAL]["data"], dtype=float),
            signal_reference_yield=float(payload["signal_reference_yield"]),
            poi_bounds=(float(bounds[0]), float(bounds[1])),
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON atomically (temporary file in the same directory, renamed)."""
        return write_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> WindowModel:
        """Read a model written by `save`."""
        with open(path) as stream:
            return cls.from_dict(json.load(stream))


@dataclass(frozen=True, eq=False)
class CalibratedFit:
    """Background after a selection: the inclusive fit times a measured efficiency per bin.

    For selections whose background efficiency is not smooth in mjj (a classifier trained in
    the signal region only), the efficiency comes from a background reference inside the
    signal region (e.g. CATHODE's template) and the inclusive spectrum, which no selection
    sculpts, from the sideband fit. `efficiency` and `efficiency_error` are on the full binning.
    """

    fit: FitResult
    efficiency: np.ndarray
    efficiency_error: np.ndarray
    #: the reference's mismodelling of the cut where no signal is expected: the data/reference
    #: pass ratio scales the background, its error is a constrained nuisance (1 and 0: none)
    control_ratio: float = 1.0
    control_error: float = 0.0


def _sr_edges(edges: np.ndarray, in_sr: np.ndarray) -> np.ndarray:
    """Edges of the contiguous signal-region bins."""
    return edges[np.r_[np.flatnonzero(in_sr), np.flatnonzero(in_sr)[-1] + 1]]


def _background_in_sr(background, edges, in_sr, staterror):
    sr_edges = _sr_edges(edges, in_sr)
    if isinstance(background, FitResult):
        if not background.valid:
            raise ValueError(f"background fit is not valid: {background.message}")
        up, down = background.variations(sr_edges)
        names = tuple(f"dijet_eigen_{k}" for k in range(up.shape[0]))
        return background.predict(sr_edges), names, up, down, staterror
    if isinstance(background, CalibratedFit):
        eff, err = background.efficiency[in_sr], background.efficiency_error[in_sr]
        if not (np.all(np.isfinite(eff)) and np.all(np.isfinite(err))):
            raise ValueError("the reference efficiency is undefined in a signal-region bin")
        inclusive, names, up, down, stat = _background_in_sr(
            background.fit, edges, in_sr, np.zeros_like(staterror)
        )
        ratio, error = background.control_ratio, background.control_error
        nominal, up, down = control_variation(inclusive * eff, up * eff, down * eff, ratio, error)
        names += (VARIATION,) * (len(up) - len(names))
        stat = np.hypot(staterror, ratio * inclusive * err)
        return nominal, names, up, down, stat
    if isinstance(background, TemplateBackground):
        nominal = background.predict(sr_edges)
        shift = nominal * background.norm_uncertainty
        stat = np.hypot(staterror, background.uncertainty(sr_edges))
        return nominal, ("template_norm",), (nominal + shift)[None], (nominal - shift)[None], stat
    raise TypeError(
        "background must be a FitResult, TemplateBackground or CalibratedFit, "
        f"got {type(background)}"
    )


def build_window_model(
    observed_counts: np.ndarray,
    edges: np.ndarray,
    window: Window | tuple[float, float],
    background: FitResult | TemplateBackground | CalibratedFit,
    signal: np.ndarray | None = None,
    resolution: float = 0.05,
    staterror: np.ndarray | None = None,
) -> WindowModel:
    """Workspace for one window: observed signal-region counts, background and signal shape.

    `observed_counts` (and an optional user `signal` template and absolute `staterror`) are
    given on the full binning `edges`; the model keeps the signal-region bins. The default
    signal is a Gaussian of relative width `resolution` at the window centre.
    """
    edges = np.asarray(edges, dtype=float)
    observed = np.asarray(observed_counts, dtype=float)
    if observed.shape != (edges.size - 1,):
        raise ValueError(f"observed_counts must have {edges.size - 1} bins, got {observed.shape}")
    if not np.all(np.isfinite(observed)):
        raise ValueError(
            f"observed_counts contain {int(np.sum(~np.isfinite(observed)))} NaN/inf bins"
        )
    window = as_window(window)
    low, high = window.sr_low, window.sr_high
    in_sr = window.bins(edges).sr
    if not in_sr.any():
        raise ValueError(f"no bin centre lies in the signal region [{low}, {high}) TeV")
    if signal is None:
        shape = gaussian_signal(edges, 0.5 * (low + high), resolution)
    else:
        signal = np.asarray(signal, dtype=float)
        if signal.shape != observed.shape or not np.all(np.isfinite(signal)) or signal.sum() <= 0:
            raise ValueError(f"signal template must be finite, positive, with {observed.size} bins")
        shape = signal / signal.sum()
    extra = np.zeros(edges.size - 1) if staterror is None else np.asarray(staterror, dtype=float)
    if extra.shape != observed.shape or not np.all(np.isfinite(extra)) or np.any(extra < 0):
        raise ValueError(f"staterror must be finite, non-negative, with {observed.size} bins")
    nominal, names, up, down, stat = _background_in_sr(background, edges, in_sr, extra[in_sr])
    if np.any(nominal <= 0):
        raise ValueError(
            f"background prediction is not positive in {int(np.sum(nominal <= 0))} bins"
        )
    acceptance = shape[in_sr].sum()
    if acceptance <= 0:
        raise ValueError("the signal shape has no events in the signal region")
    reference = max(1.0, float(np.sqrt(nominal.sum())))
    sig = reference * shape[in_sr]
    n_obs = observed[in_sr].sum()
    # Room for a signal three times larger than everything observed; negative values only as
    # far as the lowest background variation stays positive.
    upper = 3.0 * (n_obs + 10.0) / (reference * acceptance)
    floor = np.clip(np.min(np.vstack([nominal, up, down]), axis=0), 0.0, None)
    lower = -0.9 * float(np.min(floor[sig > 0] / sig[sig > 0]))
    return WindowModel(
        sr_low=low,
        sr_high=high,
        edges=_sr_edges(edges, in_sr),
        observed=observed[in_sr],
        background=nominal,
        variation_names=names,
        background_up=up,
        background_down=down,
        staterror=stat,
        signal=sig,
        signal_reference_yield=reference,
        poi_bounds=(max(lower, -upper), upper),
    )
