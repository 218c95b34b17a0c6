"""The shower models of the package, registered by name (`make_shower_model`).

- 'caloflow' (`CaloFlow`, `generative.calo.caloflow`): the two-stage MAF of CaloFlow.
- 'flow_matching' (`FlowMatchingShowers`, `generative.calo.flow_matching`): conditional flow
  matching with an ODE sampler.
- 'calo_inn' (`CaloINN`, `generative.calo.coupling`): one spline-coupling flow on the joint
  layer representation, sampled in one pass.
- 'caloflow_inn' (`CaloFlowINN`, `generative.calo.caloflow_inn`): CaloFlow's two stages, the
  shapes by a spline-coupling flow (one pass) trained by likelihood instead of a distilled IAF
  (the default: best on every metric of benchmarks/results/calo.json, 0.9 ms per shower).

All share the interface of `generative.calo.base.ShowerModel` and the CaloFlow preprocessing of
`generative.calo.preprocessing`, train with the shared loop of `generative.training` and
generate on the CPU in batches of `batch_size` showers (memory grows with the batch, not with
the number of showers asked for).
"""

from generative.calo.base import (
    SHOWER_MODELS,
    ShowerModel,
    check_incident_energies,
    make_shower_model,
    resolve_geometry,
)
from generative.calo.caloflow import CaloFlow
from generative.calo.caloflow_inn import CaloFlowINN
from generative.calo.coupling import CaloINN
from generative.calo.flow_matching import FlowMatchingShowers

__all__ = [
    "SHOWER_MODELS",
    "CaloFlow",
    "CaloFlowINN",
    "CaloINN",
    "FlowMatchingShowers",
    "ShowerModel",
    "check_incident_energies",
    "make_shower_model",
    "resolve_geometry",
]
