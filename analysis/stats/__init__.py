"""Statistics of the bump hunt: background fits, pyhf models, inference, scans, look-elsewhere."""

from analysis.stats.bias import BiasResult, InjectionPulls, bias_test
from analysis.stats.closure import ClosureOutcome, Separation, reference_closure, separation
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
from analysis.stats.dijet_batch import BatchFit, fit_dijet_batch
from analysis.stats.inference import (
    BatchDiscovery,
    DiscoveryResult,
    UpperLimitResult,
    batch_discovery_significance,
    discovery_significance,
    fast_discovery_significance,
    upper_limit,
)
from analysis.stats.lee import LookElsewhereResult, look_elsewhere
from analysis.stats.limits import WindowLimit, window_limits
from analysis.stats.models import (
    CalibratedFit,
    WindowModel,
    build_window_model,
    gaussian_signal,
)
from analysis.stats.null import NullModel, background_only_model, pseudo_scan
from analysis.stats.scan import (
    ScanConfig,
    ScanResult,
    SculptingResult,
    cell_background,
    efficiency_flatness,
    scan,
    scan_spectra,
    sculpting_check,
    window_fit,
)
from analysis.stats.selection import (
    ReferenceScores,
    SelectedSpectra,
    reference_efficiencies,
    select_spectra,
)
from analysis.stats.template import TemplateBackground, template_background
from analysis.stats.upcrossings import GlobalExtrapolation, extrapolate_global

__all__ = [
    "BatchDiscovery",
    "BatchFit",
    "BiasResult",
    "CalibratedFit",
    "ClosureOutcome",
    "DiscoveryResult",
    "FTestResult",
    "FitResult",
    "GlobalExtrapolation",
    "InjectionPulls",
    "LookElsewhereResult",
    "NullModel",
    "ReferenceScores",
    "ScanConfig",
    "ScanResult",
    "SculptingResult",
    "SelectedSpectra",
    "Separation",
    "TemplateBackground",
    "UpperLimitResult",
    "WindowLimit",
    "WindowModel",
    "background_only_model",
    "batch_discovery_significance",
    "bias_test",
    "build_window_model",
    "cell_background",
    "dijet_bin_integrals",
    "dijet_density",
    "discovery_significance",
    "efficiency_flatness",
    "extrapolate_global",
    "fast_discovery_significance",
    "fit_dijet",
    "fit_dijet_batch",
    "fixed_width_edges",
    "ftest_select",
    "gaussian_signal",
    "look_elsewhere",
    "pseudo_scan",
    "reference_closure",
    "reference_efficiencies",
    "resolution_edges",
    "sample_dijet",
    "scan",
    "scan_spectra",
    "sculpting_check",
    "select_spectra",
    "separation",
    "template_background",
    "upper_limit",
    "window_fit",
    "window_limits",
]
