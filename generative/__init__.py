"""Conditional generative models: one interface for flows, flow matching, diffusion and GANs."""

from generative.base import MODELS, DensityModel, make_model
from generative.diffusion import Diffusion
from generative.flow_matching import FlowMatching
from generative.flows import MAF
from generative.gan import GAN
from generative.preprocessing import (
    Logit,
    MinMaxScaler,
    Pipeline,
    Standardizer,
    Step,
    make_preprocessing,
)
from generative.training import History, TrainingConfig, train
from generative.vae import VAE
from generative.validation import NotFittedError

__all__ = [
    "GAN",
    "MAF",
    "MODELS",
    "VAE",
    "DensityModel",
    "Diffusion",
    "FlowMatching",
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
