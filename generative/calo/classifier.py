"""The classifier test of the CaloChallenge: can a network tell generated from reference showers?

A network learns reference vs generated on one split, the epoch is chosen on another, and its
AUC and the Jensen-Shannon divergence estimated from its cross-entropy are measured on a third
after isotonic calibration, as in the challenge's ``evaluate.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from generative.nets import MLP
from generative.training import TrainingConfig, seeded, to_tensor, train
from generative.validation import check_array

__all__ = ["ClassifierConfig", "ClassifierTestResult", "classifier_test"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Network, input scaling and training of the classifier test.

    The default network is small (2 x 256) so that a test on 10^5 showers takes a few minutes on a
    CPU. `preprocessing` is fitted on the training split: "whiten" decorrelates the inputs (PCA,
    directions with variance below 1e-6 of the largest are not blown up further), which lets the
    network find differences hidden in correlated inputs such as E_tot/E_inc within
    (log E_inc, log E_tot) within a few epochs; "standardise" scales each input; "none" feeds them
    as the challenge did.
    """

    n_hidden_layers: int = 2
    width: int = 256
    dropout: float = 0.0
    preprocessing: Literal["whiten", "standardise", "none"] = "whiten"
    #: fractions of each class used for training, validation (epoch choice, calibration), test
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(
            epochs=50, batch_size=1000, learning_rate=1e-3, patience=10, lr_schedule="cosine"
        )
    )

    @classmethod
    def challenge(cls) -> ClassifierConfig:
        """The CaloChallenge 2022 setting: 3 x 2048 hidden, raw inputs, Adam 2e-4, 50 epochs."""
        training = TrainingConfig(
            epochs=50,
            batch_size=1000,
            learning_rate=2e-4,
            patience=None,
            lr_schedule="constant",
            clip_grad_norm=None,
        )
        return cls(n_hidden_layers=3, width=2048, preprocessing="none", training=training)

    def __post_init__(self) -> None:
        if self.n_hidden_layers < 0 or self.width < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"invalid classifier: n_hidden_layers={self.n_hidden_layers} (>= 0), "
                f"width={self.width} (>= 1), dropout={self.dropout} (in [0, 1))"
            )
        if self.preprocessing not in ("whiten", "standardise", "none"):
            raise ValueError(f"preprocessing {self.preprocessing!r} is not whiten/standardise/none")
        if len(self.split) != 3 or min(self.split) <= 0:
            raise ValueError(f"split must be three positive fractions, got {self.split}")


@dataclass(frozen=True)
class ClassifierTestResult:
    """Outcome of a classifier test on held-out events (AUC 0.5 and JSD 0 mean indistinguishable).

    `auc` and `jsd` use the isotonically calibrated output as the challenge reports them; `jsd` is
    in units of log 2 (between 0 and 1, slightly negative by chance); `auc_raw` is uncalibrated.
    """

    auc: float
    jsd: float
    accuracy: float
    auc_raw: float
    n_train: int
    n_validation: int
    n_test: int
    best_epoch: int


def _input_transform(x: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Shift and matrix (x - shift) @ matrix of the chosen input scaling, fitted on `x`."""
    shift = x.mean(axis=0)
    if kind == "none":
        return np.zeros_like(shift), np.eye(x.shape[1])
    if kind == "standardise":
        std = x.std(axis=0)
        return shift, np.diag(1.0 / np.where(std > 0, std, 1.0))
    w, v = np.linalg.eigh(np.atleast_2d(np.cov(x, rowvar=False)))
    floor = max(float(w.max()), np.finfo(np.float64).tiny) * 1e-6
    return shift, v / np.sqrt(np.clip(w, floor, None))


def _mlp(n_inputs: int, config: ClassifierConfig) -> torch.nn.Sequential:
    # the challenge's DNN: Linear, LeakyReLU (torch's slope 0.01), Dropout per hidden layer
    return MLP(
        n_inputs,
        1,
        [config.width] * config.n_hidden_layers,
        activation="leaky_relu",
        negative_slope=0.01,
        dropout=config.dropout,
    )


def _bce_loss(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(module(x)[:, 0], y)


def _predict(module: torch.nn.Module, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    with torch.no_grad():
        logits = [
            module(to_tensor(x[s : s + batch_size]))[:, 0] for s in range(0, len(x), batch_size)
        ]
    return torch.sigmoid(torch.cat(logits)).numpy().astype(np.float64)


def classifier_test(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    config: ClassifierConfig | None = None,
    random_state: int = 0,
    verbose: bool = False,
) -> ClassifierTestResult:
    """Train a classifier reference-vs-generated and evaluate it on held-out events.

    Inputs are rows of features (`features.low_level_inputs` or `high_level_inputs`). The larger
    sample is truncated to the smaller, each is split into train/validation/test, the inputs are
    scaled as `config.preprocessing` says with training statistics, the epoch with the lowest
    validation loss is kept and its output calibrated on the validation set before the test AUC
    and JSD are computed.
    """
    config = config or ClassifierConfig()
    ref = check_array(reference, "reference")
    gen = check_array(generated, "generated", n_features=ref.shape[1])
    rng = np.random.default_rng(random_state)
    n = min(len(ref), len(gen))
    fractions = np.asarray(config.split, dtype=np.float64)
    counts = np.floor(n * fractions / fractions.sum()).astype(int)
    if counts.min() < 10:
        raise ValueError(
            f"too few events for the classifier test: {len(ref)} reference and {len(gen)} "
            f"generated give {counts.tolist()} per class in train/validation/test with split "
            f"{config.split}; need at least 10 in each"
        )
    bounds = np.cumsum(counts)
    parts = []
    for sample in (ref, gen):
        idx = rng.permutation(len(sample))[: bounds[-1]]
        parts.append(np.split(sample[idx], bounds[:-1]))
    labels = [np.r_[np.ones(c), np.zeros(c)] for c in counts]
    x_train, x_val, x_test = (np.concatenate([parts[0][k], parts[1][k]]) for k in range(3))
    shift, matrix = _input_transform(x_train, config.preprocessing)
    x_train, x_val, x_test = ((x - shift) @ matrix for x in (x_train, x_val, x_test))

    with seeded(random_state):
        module = _mlp(x_train.shape[1], config)
    history = train(
        module,
        _bce_loss,
        [to_tensor(x_train), to_tensor(labels[0])],
        [to_tensor(x_val), to_tensor(labels[1])],
        config=config.training,
        random_state=random_state,
        verbose=verbose,
        desc="classifier test",
    )
    module.eval()
    p_val, p_test = _predict(module, x_val), _predict(module, x_test)
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6)
    p_cal = calibrator.fit(p_val, labels[1]).predict(p_test)
    y = labels[2]
    bce = -np.mean(y * np.log(p_cal) + (1 - y) * np.log(1 - p_cal))
    return ClassifierTestResult(
        auc=float(roc_auc_score(y, p_cal)),
        jsd=float((math.log(2.0) - bce) / math.log(2.0)),
        accuracy=float(np.mean((p_cal > 0.5) == y)),
        auc_raw=float(roc_auc_score(y, p_test)),
        n_train=int(2 * counts[0]),
        n_validation=int(2 * counts[1]),
        n_test=int(2 * counts[2]),
        best_epoch=history.best_epoch,
    )
