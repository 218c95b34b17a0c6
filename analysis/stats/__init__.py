"""Statistics of the bump hunt: background fits, pyhf models, inference, scans, look-elsewhere."""

from analysis.stats.dijet import (
    FitResult,
    FTestResult,
    dijet_bin_integrals,
    dijet_density,
    fit_dijet,
    fixed_width_edges,
    ftest_select,
    resolution_edges,
    sample_dijet,
)
from analysis.stats.inference import (
    DiscoveryResult,
    UpperLimitResult,
    discovery_significance,
    fast_discovery_significance,
    upper_limit,
)
from analysis.stats.lee import LookElsewhereResult, NullModel, background_only_model, look_elsewhere
from analysis.stats.models import (
    CalibratedFit,
    WindowModel,
    build_window_model,
    gaussian_signal,
    signal_region_bins,
    window_bounds,
)
from analysis.stats.scan import (
    ScanConfig,
    ScanResult,
    SculptingResult,
    cell_expectation,
    efficiency_flatness,
    scan,
    scan_spectra,
    sculpting_check,
    window_fit,
)
from analysis.stats.selection import (
    EFFICIENCIES,
    SelectedSpectra,
    reference_efficiencies,
    select_spectra,
)
from analysis.stats.template import TemplateBackground, template_background

__all__ = [
    "EFFICIENCIES",
    "CalibratedFit",
    "DiscoveryResult",
    "FTestResult",
    "FitResult",
    "LookElsewhereResult",
    "NullModel",
    "ScanConfig",
    "ScanResult",
    "SculptingResult",
    "SelectedSpectra",
    "TemplateBackground",
    "UpperLimitResult",
    "WindowModel",
    "background_only_model",
    "build_window_model",
    "cell_expectation",
    "dijet_bin_integrals",
    "dijet_density",
    "discovery_significance",
    "efficiency_flatness",
    "fast_discovery_significance",
    "fit_dijet",
    "fixed_width_edges",
    "ftest_select",
    "gaussian_signal",
    "look_elsewhere",
    "reference_efficiencies",
    "resolution_edges",
    "sample_dijet",
    "scan",
    "scan_spectra",
    "sculpting_check",
    "select_spectra",
    "signal_region_bins",
    "template_background",
    "upper_limit",
    "window_bounds",
    "window_fit",
]
