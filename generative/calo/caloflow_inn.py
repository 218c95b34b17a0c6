"""CaloFlow's two stages with a one-pass coupling flow for the shapes, trained by likelihood.

CaloFlow (arXiv:2106.05285) models the layer energies with a small MAF (flow 1) and the
normalised layer shapes given those energies with a large one (flow 2); its student
(arXiv:2110.11377) makes flow 2 an IAF distilled from the MAF so that sampling takes one pass.
Here flow 2 is a spline coupling flow (as in CaloINN, arXiv:2210.14245) trained by maximum
likelihood directly: sampling takes one pass without a teacher, so the CPU time a teacher and
its distillation would cost goes into training the one flow. Flow 1 has only one feature per
layer, so its MAF samples in a few cheap passes and learns the energies, on which the
high-level features depend most, more precisely than a joint flow over all voxels does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from generative.calo.caloflow import CaloFlow
from generative.calo.coupling import CaloINN
from generative.coupling import CouplingFlow
from generative.flows import MAF

__all__ = ["CaloFlowINN"]


class CaloFlowINN(CaloFlow):
    """Flow 1 a spline MAF of the layer energies, flow 2 a spline coupling flow of the shapes.

    Arguments as `CaloFlow`: `energy_flow` overrides ``ENERGY_FLOW`` (keyword arguments of
    `generative.flows.MAF`), `shape_flow` overrides ``SHAPE_FLOW`` (of
    `generative.CouplingFlow`); a ``"training"`` entry in either changes that flow's training
    only. Flow 2 has the size and training of `CaloINN`'s flow; flow 1 trains in batches of
    1024 for 60 epochs (a few CPU minutes on 60k showers).
    """

    name = "caloflow_inn"
    ENERGY_FLOW: ClassVar[dict[str, Any]] = {
        **CaloFlow.ENERGY_FLOW,
        "training": {"epochs": 60, "batch_size": 1024, "patience": 10},
    }
    SHAPE_FLOW: ClassVar[dict[str, Any]] = CaloINN.FLOW
    TRAINING: ClassVar[dict[str, Any]] = CaloINN.TRAINING
    NETWORKS: ClassVar[dict[str, type[MAF]]] = {"energy": MAF, "shape": CouplingFlow}
