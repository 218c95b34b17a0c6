"""Conditional generative models: one interface for flows, flow matching, diffusion and GANs."""

from generative.base import MODELS, DensityModel, make_model
from generative.flows import MAF
from generative.preprocessing import (
    Logit,
    MinMaxScaler,
    Pipeline,
    Standardizer,
    Step,
    make_preprocessing,
)
from generative.training import History, TrainingConfig, train
from generative.validation import NotFittedError

__all__ = [
    "MAF",
    "MODELS",
    "DensityModel",
    "History",
    "Logit",
    "MinMaxScaler",
    "NotFittedError",
    "Pipeline",
    "Standardizer",
    "Step",
    "TrainingConfig",
    "make_model",
    "make_preprocessing",
    "train",
]
