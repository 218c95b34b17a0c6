"""The search configuration: YAML validated into typed objects with a default for everything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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

METHODS = ("cathode", "anode", "cwola", "idealized", "supervised", "autoencoder")


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names each offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InjectionConfig(_Strict):
    """Signal events injected into the background sample (toy: generated; files: from a pool)."""

    n_signal: int = Field(1000, ge=0, description="number of signal events injected")
    mjj: float = Field(3.5, gt=0, description="toy resonance mass in TeV")
    width: float = Field(0.15, gt=0, description="toy resonance width in TeV")
    mj1: float = Field(0.1, gt=0, description="toy lighter jet mass in TeV")
    mj2: float = Field(0.5, gt=0, description="toy heavier jet mass in TeV")


class DataConfig(_Strict):
    """Where the events come from and which features the methods see."""

    source: Literal["toy", "lhco", "table"] = Field(
        "toy", description="toy: built-in generator; lhco: R&D-layout files; table: features"
    )
    paths: list[Path] = Field(default_factory=list, description="background/data files")
    signal_path: Path | None = Field(None, description="signal pool file for injection (lhco)")
    n_background: int = Field(300_000, ge=1000, description="toy background events")
    injection: InjectionConfig = InjectionConfig()
    features: list[str] = Field(
        default_factory=lambda: ["mj1", "delta_mj", "tau21_j1", "tau21_j2"],
        min_length=1,
        description="feature names of analysis.data.FEATURES (or table columns)",
    )
    mjj_range: tuple[float, float] = Field(
        (2.8, 6.0), description="mjj range in TeV kept for the search and the fits"
    )

    @model_validator(mode="after")
    def _paths_for_files(self) -> DataConfig:
        if self.source != "toy" and not self.paths:
            raise ValueError(f"data.paths must name at least one file for source {self.source!r}")
        low, high = self.mjj_range
        if not 0 < low < high:
            raise ValueError(f"data.mjj_range must be 0 < low < high, got {self.mjj_range}")
        return self


class WindowsConfig(_Strict):
    """Sliding signal-region windows in mjj (TeV)."""

    low: float = Field(3.1, gt=0, description="lower edge of the first window")
    high: float = Field(4.1, gt=0, description="upper edge of the last window")
    width: float = Field(0.4, gt=0, description="window width (TeV, or a fraction for log)")
    step: float | None = Field(0.2, gt=0, description="distance between windows; null = width")
    spacing: Literal["linear", "log"] = "linear"
    sideband_width: float | None = Field(
        0.6, gt=0, description="sideband width on each side in TeV; null = everything outside"
    )

    @model_validator(mode="after")
    def _ordered(self) -> WindowsConfig:
        if self.low >= self.high:
            raise ValueError(f"windows.low ({self.low}) must be below windows.high ({self.high})")
        return self


class MethodConfig(_Strict):
    """One anomaly detector and its options (passed to its constructor)."""

    name: Literal["cathode", "anode", "cwola", "idealized", "supervised", "autoencoder"]
    options: dict[str, Any] = Field(default_factory=dict, description="constructor arguments")


class StatsConfig(_Strict):
    """Selections, background fit and look-elsewhere settings of the bump hunt."""

    efficiencies: list[float] = Field(
        default_factory=lambda: [1.0, 0.1, 0.01, 0.002],
        min_length=1,
        description="selection efficiencies, thresholds fixed on each window's own scores",
    )
    bin_width: float = Field(0.1, gt=0, description="mjj bin width in TeV")
    n_params: Literal[3, 4, 5] = Field(4, description="parameters of the dijet function")
    resolution: float = Field(0.05, gt=0, description="relative mjj resolution of the signal")
    n_pseudo: int = Field(200, ge=0, description="background-only pseudo-experiments (0: skip)")

    @field_validator("efficiencies")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not 0 < v <= 1]
        if bad:
            raise ValueError(f"efficiencies must lie in (0, 1], got {bad}")
        return values


class ExecutorConfig(_Strict):
    """Where independent units of work run."""

    kind: Literal["inprocess", "processes", "dask"] = Field(
        "processes", description="inprocess, a local process pool, or a Dask cluster"
    )
    address: str | None = Field(None, description="dask scheduler address; null = a LocalCluster")
    n_workers: int | None = Field(
        None, ge=1, description="workers of a process pool or LocalCluster; null = one per core"
    )
    threads_per_task: int = Field(
        1, ge=1, description="threads a unit may use (torch, OpenMP); workers scale better"
    )


class CompareConfig(_Strict):
    """Method comparison on labelled data: one signal region, several injections and seeds."""

    methods: list[MethodConfig] = Field(
        default_factory=lambda: [
            MethodConfig(name=n) for n in ("cathode", "cwola", "idealized", "supervised")
        ],
        min_length=1,
    )
    injections: list[int] = Field(
        default_factory=lambda: [1000], min_length=1, description="injected signal events"
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    signal_region: tuple[float, float] = Field((3.3, 3.7), description="SR in TeV")
    sideband_width: float | None = Field(None, gt=0, description="TeV; null = all else")
    n_test_background: int = Field(200_000, ge=100, description="toy test background events")
    n_test_signal: int = Field(20_000, ge=10, description="toy test signal events")
    lhco_directory: Path | None = Field(
        None, description="folder of qcd_partNN.h5 + signal file (data.source lhco)"
    )
    min_background: int = Field(50, ge=1, description="floor of test background for max SIC")

    @field_validator("injections")
    @classmethod
    def _non_negative(cls, values: list[int]) -> list[int]:
        if any(v < 0 for v in values):
            raise ValueError(f"injections must be non-negative, got {values}")
        return values


#: The embedded search is sized to finish in minutes on two cores: 3 boosted models per fold
#: instead of 10 and a flow trained for 15 epochs instead of 30 (the detectors' own defaults).
DEFAULT_CWOLA: dict[str, Any] = {"classifier_params": {"n_models": 3}}
DEFAULT_CATHODE: dict[str, Any] = {
    **DEFAULT_CWOLA,
    "density_params": {"training": {"epochs": 15, "batch_size": 2048, "learning_rate": 2e-3}},
}


class SearchConfig(_Strict):
    """A whole search: data, windows, methods, statistics, execution, outputs."""

    data: DataConfig = DataConfig()
    windows: WindowsConfig = WindowsConfig()
    methods: list[MethodConfig] = Field(
        default_factory=lambda: [
            MethodConfig(name="cathode", options=DEFAULT_CATHODE),
            MethodConfig(name="cwola", options=DEFAULT_CWOLA),
        ],
        min_length=1,
    )
    stats: StatsConfig = StatsConfig()
    compare: CompareConfig = CompareConfig()
    executor: ExecutorConfig = ExecutorConfig()
    output: Path = Field(Path("resonance-search-results"), description="results folder")
    seed: int = Field(0, ge=0, description="master seed; every task gets its own child seed")

    @model_validator(mode="after")
    def _windows_inside_data(self) -> SearchConfig:
        low, high = self.data.mjj_range
        if self.windows.low < low or self.windows.high > high:
            raise ValueError(
                f"windows [{self.windows.low}, {self.windows.high}] TeV lie outside "
                f"data.mjj_range [{low}, {high}] TeV"
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
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _format(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown key"
        if e["type"] == "literal_error":
            message = f"must be one of {e['ctx']['expected']}"
        got = "" if not e["loc"] else f" (got {e.get('input')!r})"
        lines.append(f"  {key}: {message}{got}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_config(source: str | Path | dict[str, Any] | None = None) -> SearchConfig:
    """Read and validate a YAML file or mapping; None gives the embedded default search."""
    if source is None:
        raw: Any = {}
    elif isinstance(source, dict):
        raw = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"configuration file {path} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"a configuration must be a mapping of keys, got {type(raw).__name__}")
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format(err)) from None


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
            lines.append(f"{pad}# detectors, each with constructor options: {', '.join(METHODS)}")
            lines.append(f"{pad}{name}:")
            for method in item:
                lines.append(f"{pad}  - name: {method.name}")
                options = yaml.safe_dump(method.options, default_flow_style=True, width=1000)
                lines.append(f"{pad}    options: {options.strip()}")
        else:
            dumped = yaml.safe_dump(
                {name: json.loads(json.dumps(item, default=str))}, default_flow_style=True
            )
            lines.append(f"{pad}{dumped.strip()[1:-1]}")
