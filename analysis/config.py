"""The search configuration: YAML validated into typed objects with a default for everything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from analysis.defaults import DEFAULT_EFFICIENCIES, DEFAULT_FEATURES
from analysis.options import check_method_options
from analysis.yaml_file import YamlFileError, read_yaml

__all__ = [
    "CompareConfig",
    "ConfigError",
    "DataConfig",
    "ExecutorConfig",
    "MethodConfig",
    "SearchConfig",
    "StatsConfig",
    "WindowsConfig",
    "example_yaml",
    "load_config",
]

#: an integer that is written as one (a boolean or 3.0 is refused)
Int = Annotated[int, Strict()]
#: a finite number (an integer is fine, a boolean, a string, inf or nan are refused)
Real = Annotated[float, Strict(), AllowInfNan(False)]


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names each offending key."""


def method_names() -> list[str]:
    """Names of the anomaly detectors a configuration may use (the detector registry's)."""
    from anomaly import DETECTORS

    return list(DETECTORS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InjectionConfig(_Strict):
    """Signal events injected into the background sample (toy: generated; files: from a pool)."""

    n_signal: Int = Field(1000, ge=0, description="number of signal events injected")
    mjj: Real = Field(3.5, gt=0, description="toy resonance mass in TeV")
    width: Real = Field(0.15, gt=0, description="toy resonance width in TeV")
    mj1: Real = Field(0.1, gt=0, description="toy lighter jet mass in TeV")
    mj2: Real = Field(0.5, gt=0, description="toy heavier jet mass in TeV")


class DataConfig(_Strict):
    """Where the events come from and which features the methods see."""

    source: Literal["toy", "lhco", "table"] = Field(
        "toy", description="toy: built-in generator; lhco: R&D-layout files; table: features"
    )
    paths: list[Path] = Field(default_factory=list, description="background/data files")
    signal_path: Path | None = Field(None, description="signal pool file for injection (lhco)")
    n_background: Int = Field(300_000, ge=1000, description="toy background events")
    injection: InjectionConfig = Field(default_factory=InjectionConfig)
    features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FEATURES),
        min_length=1,
        description="feature names of analysis.data.FEATURES (or table columns)",
    )
    duplicates: Literal["refuse", "drop"] = Field(
        "refuse",
        description="events repeated within or across files (equal within 1e-6): refuse them, "
        "or drop the copies and keep the first of each",
    )
    mjj_range: tuple[Real, Real] = Field(
        (2.8, 6.0), description="mjj range in TeV kept for the search and the fits"
    )
    mass_shift: Real = Field(
        0.0,
        ge=0,
        description="correlate the jet masses with mjj (CATHODE paper's shifted test: 0.1): both "
        "jet masses + mass_shift x mjj before the features are built, in every table of toy or "
        "lhco events; 0 = off",
    )

    @model_validator(mode="after")
    def _paths_for_files(self) -> DataConfig:
        if self.source != "toy" and not self.paths:
            raise ValueError(f"data.paths must name at least one file for source {self.source!r}")
        if self.source == "table" and self.mass_shift:
            raise ValueError(
                "data.mass_shift shifts the jet masses of toy or lhco events before the features "
                "are built; a features table (source 'table') is used as it is"
            )
        low, high = self.mjj_range
        if not 0 < low < high:
            raise ValueError(f"data.mjj_range must be 0 < low < high, got {self.mjj_range}")
        return self


class WindowsConfig(_Strict):
    """Sliding signal-region windows in mjj (TeV)."""

    low: Real = Field(3.1, gt=0, description="lower edge of the first window")
    high: Real = Field(4.1, gt=0, description="upper edge of the last window")
    width: Real = Field(0.4, gt=0, description="window width (TeV, or a fraction for log)")
    step: Real | None = Field(0.2, gt=0, description="distance between windows; null = width")
    spacing: Literal["linear", "log"] = "linear"
    sideband_width: Real | None = Field(
        0.6, gt=0, description="sideband width on each side in TeV; null = everything outside"
    )

    @model_validator(mode="after")
    def _ordered(self) -> WindowsConfig:
        if self.low >= self.high:
            raise ValueError(f"windows.low ({self.low}) must be below windows.high ({self.high})")
        return self


class MethodConfig(_Strict):
    """One anomaly detector and its options (passed to its constructor)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict, description="constructor arguments")
    background: Literal["fit", "reference"] = Field(
        "fit",
        description=(
            "fit (dijet fit of each cut's selected sidebands; run cross-fits CATHODE/LaCATHODE "
            "unless options.cross_fit is false) or reference (inclusive fit x the cut's efficiency "
            "on the method's own SR sample, its measured mismodelling a nuisance)"
        ),
    )

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        names = method_names()
        if name not in names:
            raise ValueError(f"must be one of {', '.join(map(repr, names))}")
        return name

    @model_validator(mode="after")
    def _options_fit_the_constructor(self) -> MethodConfig:
        check_method_options(self.name, self.options)
        return self


class StatsConfig(_Strict):
    """Selections, background fit and look-elsewhere settings of the bump hunt."""

    efficiencies: list[Real] = Field(
        default_factory=lambda: list(DEFAULT_EFFICIENCIES),
        min_length=1,
        description="selection efficiencies, thresholds fixed on each window's own scores",
    )
    bin_width: Real = Field(0.1, gt=0, description="mjj bin width in TeV")
    n_params: Literal[3, 4, 5] = Field(4, description="parameters of the dijet function")
    resolution: Real = Field(0.05, gt=0, description="relative mjj resolution of the signal")
    n_pseudo: Int = Field(200, ge=0, description="background-only pseudo-experiments (0: skip)")
    limit_efficiency: Real | None = Field(
        None,
        gt=0,
        le=1,
        description="efficiency of the CLs limits; null = that of each method's largest excess",
    )
    bias_test: bool = Field(
        False, description="bias tests (0/2/5 sigma injected) and F-test per window in the report"
    )

    @field_validator("efficiencies")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not 0 < v <= 1]
        if bad:
            raise ValueError(f"efficiencies must lie in (0, 1], got {bad}")
        return values

    @model_validator(mode="after")
    def _limit_efficiency_scanned(self) -> StatsConfig:
        if self.limit_efficiency is not None and self.limit_efficiency not in self.efficiencies:
            raise ValueError(
                f"stats.limit_efficiency {self.limit_efficiency} must be one of "
                f"stats.efficiencies {self.efficiencies}"
            )
        return self


class ExecutorConfig(_Strict):
    """Where independent units of work run."""

    kind: Literal["inprocess", "processes", "dask"] = Field(
        "processes", description="inprocess, a local process pool, or a Dask cluster"
    )
    address: str | None = Field(None, description="dask scheduler address; null = a LocalCluster")
    n_workers: Int | None = Field(
        None, ge=1, description="workers of a process pool or LocalCluster; null = one per core"
    )
    threads_per_task: Int = Field(
        1, ge=1, description="threads a unit may use (torch, OpenMP); workers scale better"
    )


class CompareConfig(_Strict):
    """Method comparison on labelled data: one signal region, several injections and seeds."""

    methods: list[MethodConfig] = Field(
        default_factory=lambda: [
            default_method(n) for n in ("cathode", "cwola", "idealized", "supervised")
        ],
        min_length=1,
    )
    injections: list[Int] = Field(
        default_factory=lambda: [1000], min_length=1, description="injected signal events"
    )
    seeds: list[Int] = Field(default_factory=lambda: [0], min_length=1)
    signal_region: tuple[Real, Real] = Field((3.3, 3.7), description="SR in TeV")
    sideband_width: Real | None = Field(None, gt=0, description="TeV; null = all else")
    n_test_background: Int = Field(200_000, ge=100, description="toy test background events")
    n_test_signal: Int = Field(20_000, ge=10, description="toy test signal events")
    lhco_directory: Path | None = Field(
        None, description="folder of qcd_partNN.h5 + signal file (data.source lhco)"
    )
    min_background: Int = Field(50, ge=1, description="floor of test background for max SIC")

    @field_validator("injections")
    @classmethod
    def _non_negative(cls, values: list[int]) -> list[int]:
        if any(v < 0 for v in values):
            raise ValueError(f"injections must be non-negative, got {values}")
        return values


def default_method(name: str, options: dict[str, Any] | None = None) -> MethodConfig:
    """A method of the defaults, its options checked like a configured method's."""
    return MethodConfig(name=name, options=dict(options or {}))


#: The embedded search is sized to finish in minutes on two cores: 3 boosted models per fold
#: instead of 10. CATHODE's template is the detector's own measured default (anomaly.FAST_MAF,
#: benchmarks/template_quality.py): a flow trained for fewer epochs mismodels the sidebands more.
DEFAULT_CWOLA: dict[str, Any] = {"classifier_params": {"n_models": 3}}
DEFAULT_CATHODE: dict[str, Any] = dict(DEFAULT_CWOLA)


class SearchConfig(_Strict):
    """A whole search: data, windows, methods, statistics, execution, outputs."""

    data: DataConfig = Field(default_factory=DataConfig)
    windows: WindowsConfig = Field(default_factory=WindowsConfig)
    methods: list[MethodConfig] = Field(
        default_factory=lambda: [
            default_method("cathode", DEFAULT_CATHODE),
            default_method("cwola", DEFAULT_CWOLA),
        ],
        min_length=1,
    )
    stats: StatsConfig = Field(default_factory=StatsConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    output: Path = Field(Path("resonance-search-results"), description="results folder")
    seed: Int = Field(0, ge=0, description="master seed; every task gets its own child seed")

    @model_validator(mode="after")
    def _windows_inside_data(self) -> SearchConfig:
        low, high = self.data.mjj_range
        if self.windows.low < low or self.windows.high > high:
            raise ValueError(
                f"windows [{self.windows.low}, {self.windows.high}] TeV lie outside "
                f"data.mjj_range [{low}, {high}] TeV"
            )
        # The dijet fit needs more bins than parameters in the range it fits.
        n_bins = int((high - low) / self.stats.bin_width + 1e-9)
        if n_bins < self.stats.n_params + 2:
            raise ValueError(
                f"stats.bin_width {self.stats.bin_width} TeV gives {n_bins} bins over "
                f"data.mjj_range [{low}, {high}] TeV; a fit of {self.stats.n_params} parameters "
                f"needs at least {self.stats.n_params + 2}"
            )
        return self

    def fingerprint(self, purpose: Literal["run", "compare"] = "run") -> str:
        """Hash of everything that changes the results of `run` or of `compare`.

        The output folder and the executor never change numbers; `run` ignores the compare
        section and `compare` the windows, methods and statistics of the search.
        """
        ignored = {"output", "executor"}
        ignored |= {"compare"} if purpose == "run" else {"windows", "methods", "stats"}
        payload = self.model_dump(mode="json", exclude=ignored)
        # Off, the mass shift stays out of the hash: results stored before it existed resume.
        if not self.data.mass_shift:
            del payload["data"]["mass_shift"]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _format(err: ValidationError, where: str) -> str:
    """One line per problem: where it comes from, the dotted key, what is wrong."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown key"
        if e["type"] == "literal_error":
            message = f"must be one of {e['ctx']['expected']}"
        got = "" if not e["loc"] or isinstance(e.get("input"), dict) else f" (got {e['input']!r})"
        lines.append(f"{where}: {key}: {message}{got}")
    return "\n".join(lines)


def load_config(source: str | Path | dict[str, Any] | None = None) -> SearchConfig:
    """Read and validate a YAML file or mapping; None gives the embedded default search."""
    where = "configuration"
    if source is None:
        raw: Any = {}
    elif isinstance(source, dict):
        raw = source
    else:
        where = str(source)
        try:
            raw = read_yaml(Path(source))
        except YamlFileError as err:
            raise ConfigError(str(err)) from None
        raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: a configuration must be a mapping of keys, got {type(raw).__name__}"
        )
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err, where)) from None


def example_yaml() -> str:
    """A documented example configuration with every key at its default."""
    lines = ["# resonance-search configuration: every key is optional (defaults shown)."]
    _describe(SearchConfig(), SearchConfig, lines, indent=0)
    return "\n".join(lines) + "\n"


def _describe(value: BaseModel, cls: type[BaseModel], lines: list[str], indent: int) -> None:
    pad = " " * indent
    for name, field in cls.model_fields.items():
        item = getattr(value, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(item, BaseModel):
            lines.append(f"{pad}{name}:")
            _describe(item, type(item), lines, indent + 2)
        elif name == "methods":
            methods = ", ".join(method_names())
            lines.append(f"{pad}# detectors, each with constructor options: {methods}")
            lines.append(f"{pad}{name}:")
            for method in item:
                lines.append(f"{pad}  - name: {method.name}")
                options = yaml.safe_dump(method.options, default_flow_style=True, width=1000)
                lines.append(f"{pad}    options: {options.strip()}")
                lines.append(f"{pad}    background: {method.background}")
        else:
            dumped = yaml.safe_dump(
                {name: json.loads(json.dumps(item, default=str))}, default_flow_style=True
            )
            lines.append(f"{pad}{dumped.strip()[1:-1]}")
