"""CaloFlowINN: flow 1 a MAF of the layer energies, flow 2 an invertible one-pass coupling flow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generative.calo.features import layer_energies
from generative.calo.preprocessing import LogitAlpha
from generative.coupling import CouplingFlow
from generative.flows import MAF
from generative.training import to_tensor
from tests.calo.conftest import fast_shower_model


@pytest.mark.parametrize("hits", [None, 10])
def test_flow_two_is_a_coupling_flow_that_inverts_its_own_samples(tiny_geometry, tiny_data, hits):
    model = fast_shower_model("caloflow_inn", tiny_geometry, hits=hits)
    model.fit(tiny_data.showers, tiny_data.energies)
    assert type(model.models_["energy"]) is MAF
    shape = model.models_["shape"]
    assert isinstance(shape, CouplingFlow)
    _, energies, shapes = model._decompose(tiny_data, 0)
    mev = model._relative().inverse(energies, tiny_data.energies)
    signatures = None if hits is None else model.hits_.signatures_
    context = model._layer_context(tiny_data.energies, mev, signatures)
    embedded_context = shape.context_preprocessing_.forward(context[:64])[0]
    z = torch.randn(64, shape.n_features_in_, generator=torch.Generator().manual_seed(0))
    transform = shape.module_._transform
    embedded = shape.module_._embedding_net(to_tensor(embedded_context))
    with torch.no_grad():
        x, logdet_inverse = transform.inverse(z, context=embedded)
        z_back, logdet_forward = transform(x, context=embedded)
    # one pass each way: the data-to-noise map undoes the sampling map, and their log-Jacobians
    # cancel (the likelihood is exact)
    torch.testing.assert_close(z_back, z, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logdet_forward, -logdet_inverse, atol=1e-3, rtol=1e-4)
    log_p = shape.log_prob(model._shape_targets(energies, shapes, tiny_data.energies), context)
    assert log_p.shape == (len(tiny_data),)
    assert np.all(np.isfinite(log_p))


def test_each_flow_keeps_its_own_training_unless_the_user_sets_the_field(tiny_geometry, tiny_data):
    model = fast_shower_model("caloflow_inn", tiny_geometry, training={"batch_size": 128})
    model.fit(tiny_data.showers, tiny_data.energies)
    # flow 1's own default (100 epochs) beats the model's (CaloINN's 40); the user's batch size
    # beats both
    assert model.models_["energy"].training.epochs == 100
    assert model.models_["shape"].training.epochs == 40
    assert {net.training.batch_size for net in model.models_.values()} == {128}
    user = fast_shower_model("caloflow_inn", tiny_geometry, training={"epochs": 2})
    user.fit(tiny_data.showers, tiny_data.energies)
    assert {net.history_.epochs_run for net in user.models_.values()} == {2}


def test_empty_voxels_of_a_filled_layer_fill_the_gap_below_the_threshold(tiny_geometry, tiny_data):
    model = fast_shower_model("caloflow_inn", tiny_geometry)
    model.fit(tiny_data.showers, tiny_data.energies)
    _, energies, shapes = model._decompose(tiny_data, 0)
    features = model._shape_targets(energies, shapes, tiny_data.energies)
    layers = model._relative().inverse(energies, tiny_data.energies)
    free = model._free_voxels()
    mev = LogitAlpha(model.alpha).inverse(features, None) * model._layers_per_voxel(layers)[:, free]
    data = tiny_data.showers[:, free]
    empty = (data == 0) & model._layers_per_voxel(layers >= model._floors())[:, free]
    # empty voxels spread below a share of the threshold, real ones stay at or above it
    below = model.EMPTY_FILL * model.threshold_
    assert np.all(mev[empty] < below * (1 + 1e-6))
    assert np.quantile(mev[empty], 0.9) > 0.8 * below
    assert np.all(mev[data > 0] >= model.threshold_ * (1 - 1e-6))


def test_generated_layers_carry_flow_ones_energy_in_voxels_above_threshold(
    tiny_geometry, tiny_data
):
    model = fast_shower_model("caloflow_inn", tiny_geometry)
    model.fit(tiny_data.showers, tiny_data.energies)
    incident = np.geomspace(256.0, 4096.0, 40)
    e_layers = model.sample_layer_energies(incident, random_state=3, batch_size=40)
    showers = model.sample(incident, random_state=3, batch_size=40)
    assert np.all((showers == 0) | (showers >= model.threshold_))
    filled = e_layers >= model.threshold_
    np.testing.assert_allclose(
        layer_energies(showers, tiny_geometry)[filled], e_layers[filled], rtol=1e-9
    )


def test_a_model_saved_before_hit_signatures_loads_without_them(tiny_geometry, tiny_data):
    from generative.calo.caloflow_inn import CaloFlowINN

    fitted = fast_shower_model("caloflow_inn", tiny_geometry, hits=None)
    fitted.fit(tiny_data.showers, tiny_data.energies)
    old = CaloFlowINN()  # the default now has signatures; an old file's state has no "hits"
    old._set_extra_state({"energy_code": fitted.energy_code_.to_dict()})
    assert old.hits_ is None
    assert old.hits is None
