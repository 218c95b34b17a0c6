"""Training settings of every torch model, as plain data (importing them loads no torch)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["TrainingConfig", "merge_settings"]


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of the shared training loop.

    Defaults suit the tabular density models of the project on a CPU: batches of 1024 (an epoch of
    500k events costs seconds, not minutes, at batch 256) with a learning rate tuned for that size.
    """

    epochs: int = 100
    batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    validation_fraction: float = 0.2
    #: epochs without improvement of the validation loss before stopping; None trains all epochs
    patience: int | None = 10
    min_delta: float = 0.0
    lr_schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    clip_grad_norm: float | None = 5.0
    #: restore the weights of the epoch with the lowest validation loss
    restore_best: bool = True
    #: file of the training state, written after every epoch; an interrupted training given the
    #: same file, data and settings resumes from its last finished epoch
    checkpoint: str | None = None
    #: seconds of training (summed over resumed runs) after which no further epoch is started;
    #: a cosine schedule then follows the elapsed fraction of it when that is ahead of the epochs
    time_limit: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "validation_fraction": 0.0 <= self.validation_fraction < 1.0,
            "patience": self.patience is None or self.patience >= 1,
            "lr_schedule": self.lr_schedule in ("cosine", "plateau", "constant"),
            "time_limit": self.time_limit is None or self.time_limit > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid training settings: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}"
            )

    @classmethod
    def coerce(
        cls,
        value: TrainingConfig | Mapping[str, Any] | None,
        defaults: TrainingConfig | Mapping[str, Any] | None = None,
    ) -> TrainingConfig:
        """A config from a config, a mapping of some of its fields (e.g. from YAML) or None.

        A mapping overrides only the fields it names: the others keep the values of `defaults`
        (a model's own training defaults; the class defaults without them). A config or None
        stands as it is (None meaning `defaults`).
        """
        base = cls() if defaults is None else cls.coerce(defaults)
        if value is None:
            return base
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"training settings must be a mapping, got {type(value).__name__}")
        unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        return dataclasses.replace(base, **value)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for saving with a model."""
        return dataclasses.asdict(self)


def merge_settings(
    defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`defaults` updated by `overrides`, the nested ``"training"`` mappings merged field by field.

    So ``{"training": {"epochs": 5}}`` changes the epochs of a model's default training and keeps
    its patience, batch size and learning rate.
    """
    merged = {**defaults, **(overrides or {})}
    inner = (defaults.get("training"), (overrides or {}).get("training"))
    if all(isinstance(part, Mapping) for part in inner):
        merged["training"] = {**inner[0], **inner[1]}
    return merged
