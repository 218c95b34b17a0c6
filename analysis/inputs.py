"""The events of a search and its windows: read or generated, signal injected, features built."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.config import DataConfig, SearchConfig
from analysis.data import ToySignal, build_features, inject_signal, make_toy, read_lhco, read_table
from analysis.data.duplicates import read_files
from analysis.regions import Window, sliding_windows
from analysis.results import DataDescription, SearchData

__all__ = ["event_features", "load_search_data", "search_windows", "toy_signal"]


def toy_signal(config: DataConfig) -> ToySignal:
    """The toy resonance the data configuration asks for."""
    inj = config.injection
    return ToySignal(mjj=inj.mjj, width=inj.width, mj1=inj.mj1, mj2=inj.mj2)


def event_features(raw: pd.DataFrame, config: DataConfig) -> pd.DataFrame:
    """Features table of LHCO-layout events (toy or files) as configured, jet masses shifted."""
    return build_features(raw, config.features, mass_shift=config.mass_shift)


def load_search_data(config: DataConfig, seed: np.random.SeedSequence) -> SearchData:
    """Read or generate the events, inject signal, build features, keep the mjj range."""
    data_seed, injection_seed, extra_seed = seed.spawn(3)
    extra = None
    if config.source == "toy":
        raw = make_toy(
            config.n_background,
            config.injection.n_signal,
            signal=toy_signal(config),
            random_state=data_seed,
        )
        extra = event_features(make_toy(config.n_background, random_state=extra_seed), config)
        events = event_features(raw, config)
    elif config.source == "lhco":
        raw = read_files(config.paths, read_lhco, config.duplicates)
        if config.signal_path is not None and config.injection.n_signal > 0:
            pool = read_lhco(config.signal_path)
            raw = inject_signal(
                raw, pool, n_signal=config.injection.n_signal, random_state=injection_seed
            ).data
        events = event_features(raw, config)
    else:
        columns = ["mjj", *config.features]
        events = read_files(config.paths, lambda path: read_table(path, columns), config.duplicates)
    low, high = config.mjj_range
    keep = (events["mjj"] >= low) & (events["mjj"] < high)
    if not keep.any():
        raise ValueError(f"no event has mjj in data.mjj_range [{low}, {high}] TeV")
    events = events[keep].reset_index(drop=True)
    if extra is not None:
        extra = extra[(extra["mjj"] >= low) & (extra["mjj"] < high)].reset_index(drop=True)
    description = DataDescription(
        source=config.source,
        n_events=len(events),
        n_signal=int(events["label"].sum()) if "label" in events else None,
        features=tuple(config.features),
        mjj_range=(low, high),
    )
    return SearchData(events, extra, description)


def search_windows(config: SearchConfig) -> list[Window]:
    """The sliding windows of the configuration."""
    w = config.windows
    return sliding_windows(
        w.low, w.high, w.width, w.step, spacing=w.spacing, sideband_width=w.sideband_width
    )
