"""Search configurations small enough for unit tests (seconds, not minutes)."""

from __future__ import annotations

FAST_HGB = {
    "classifier": "hgb",
    "classifier_params": {"n_models": 2, "max_iter": 40},
    "n_folds": 3,
}
FAST_CATHODE = {
    **FAST_HGB,
    "density_params": {
        "n_transforms": 2,
        "hidden_features": 16,
        "verbose": False,
        "training": {"epochs": 3, "batch_size": 1024, "learning_rate": 3e-3},
    },
    "oversampling": 2.0,
}


def tiny(tmp_path, name="run", **overrides) -> dict:
    """A search small enough for a unit test: 60k toy events, 2 windows, 20 pseudo-experiments."""
    raw = {
        "data": {"n_background": 60_000, "injection": {"n_signal": 600}},
        "windows": {"low": 3.3, "high": 3.9, "width": 0.4, "step": 0.2, "sideband_width": 0.4},
        "methods": [{"name": "cwola", "options": FAST_HGB}],
        "stats": {"efficiencies": [1.0, 0.1], "n_pseudo": 20},
        "executor": {"kind": "inprocess"},
        "output": str(tmp_path / name),
        "seed": 3,
    }
    for key, value in overrides.items():
        raw[key] = value
    return raw
