"""Event data: LHCO R&D readers, the feature registry, signal injection, the toy, input checks.

Files are read without unpickling anything (``analysis.data.hdf5``); duplicated events are found
by ``find_duplicates`` and refused by ``read_files``.

Raw tables follow the LHC Olympics 2020 R&D layout in GeV; features tables hold ``mjj`` and jet
masses/pT in TeV (see ``analysis.data.features``).
"""

from analysis.data.duplicates import DuplicateEventsError, find_duplicates, read_files
from analysis.data.features import (
    DEFAULT_FEATURES,
    FEATURES,
    MJJ,
    ZERO_DENOMINATOR_VALUE,
    build_features,
    register_feature,
    shift_jet_masses,
)
from analysis.data.injection import (
    BenchmarkSplit,
    Injection,
    benchmark_split,
    benchmark_split_from_parts,
    inject_signal,
    lhco_benchmark_split,
)
from analysis.data.readers import iter_lhco, read_lhco, read_table
from analysis.data.toy import ToySignal, make_toy
from analysis.data.validation import (
    LABEL_COLUMN,
    LHCO_COLUMNS,
    LHCO_FEATURE_COLUMNS,
    validate_features,
    validate_lhco,
)

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "LABEL_COLUMN",
    "LHCO_COLUMNS",
    "LHCO_FEATURE_COLUMNS",
    "MJJ",
    "ZERO_DENOMINATOR_VALUE",
    "BenchmarkSplit",
    "DuplicateEventsError",
    "Injection",
    "ToySignal",
    "benchmark_split",
    "benchmark_split_from_parts",
    "build_features",
    "find_duplicates",
    "inject_signal",
    "iter_lhco",
    "lhco_benchmark_split",
    "make_toy",
    "read_files",
    "read_lhco",
    "read_table",
    "register_feature",
    "shift_jet_masses",
    "validate_features",
    "validate_lhco",
]
