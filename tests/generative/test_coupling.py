"""The coupling flow: exact invertibility, log-density by the change of variables, one-pass
sampling, and a fit that reproduces a known Gaussian."""

import numpy as np
import pytest
import torch

from generative import CouplingFlow
from tests.generative.test_flow_matching import (
    assert_density_integrates_to_one,
    assert_log_prob_matches_gaussian,
    correlated_gaussian,
)


@pytest.fixture(scope="module", params=["spline", "affine"])
def flow(request):
    model = CouplingFlow(
        preprocessing="standard",
        transform=request.param,
        n_transforms=4,
        hidden_features=32,
        n_blocks=1,
        n_bins=4,
        training={"epochs": 15, "batch_size": 256, "learning_rate": 3e-3, "patience": None},
        random_state=0,
        verbose=False,
    )
    return model.fit(correlated_gaussian(4000, seed=0))


def test_inverse_undoes_forward_to_float32_precision(flow):
    z = torch.randn(200, flow.n_features_in_)
    transform = flow.module_._transform
    with torch.no_grad():
        x, _ = transform.inverse(z)
        back, _ = transform(x)
    torch.testing.assert_close(back, z, atol=1e-4, rtol=1e-4)


def test_log_det_matches_autograd(flow):
    x = torch.randn(5, flow.n_features_in_, dtype=torch.float32)
    transform = flow.module_._transform
    for i in range(len(x)):
        xi = x[i : i + 1]
        _, logdet = transform(xi)
        jac = torch.autograd.functional.jacobian(lambda v: transform(v)[0], xi)
        expected = torch.linalg.slogdet(jac.reshape(xi.shape[1], xi.shape[1]))[1]
        torch.testing.assert_close(logdet[0], expected, atol=1e-3, rtol=1e-3)


def test_log_prob_is_the_gaussian_it_learned(flow):
    assert_log_prob_matches_gaussian(flow)


def test_density_integrates_to_one(flow):
    assert_density_integrates_to_one(flow)


def test_sampling_reproduces_the_gaussian(flow):
    samples = flow.sample(20_000, random_state=0)
    truth = correlated_gaussian(200_000, seed=5)
    np.testing.assert_allclose(samples.mean(axis=0), truth.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(np.corrcoef(samples.T)[0, 1], np.corrcoef(truth.T)[0, 1], atol=0.1)
    np.testing.assert_array_equal(flow.sample(50, random_state=3), flow.sample(50, random_state=3))


def test_one_feature_cannot_be_split():
    with pytest.raises(ValueError, match="at least 2 features"):
        CouplingFlow(training={"epochs": 1}, verbose=False).fit(
            np.random.default_rng(0).normal(size=(50, 1))
        )


def transform_counts(flow: CouplingFlow, n_features: int) -> np.ndarray:
    """How many couplings of the flow's network transform each input feature."""
    from nflows.transforms.coupling import CouplingTransform
    from nflows.transforms.permutations import Permutation

    module = flow._build_module(n_features, 1)
    position = np.arange(n_features)  # the input feature at each position
    counts = np.zeros(n_features, dtype=int)
    for step in module._transform._transforms:
        if isinstance(step, CouplingTransform):
            counts[position[step.transform_features.numpy()]] += 1
        elif isinstance(step, Permutation):
            position = position[step._permutation.numpy()]
    return counts


@pytest.mark.parametrize(("n_transforms", "n_features"), [(8, 368), (5, 7), (2, 3)])
def test_every_feature_is_transformed_by_half_of_the_couplings(n_transforms, n_features):
    torch.manual_seed(0)
    counts = transform_counts(CouplingFlow(n_transforms=n_transforms), n_features)
    assert counts.min() >= n_transforms // 2
    assert counts.max() <= (n_transforms + 1) // 2


def test_a_permutation_after_every_coupling_leaves_features_untransformed():
    # the failure the pairing removes: of 368 features each is left out with chance 2^-8, so
    # a network misses at least one with chance 0.76 (five all pass with chance 0.001)
    lowest = []
    for seed in range(5):
        torch.manual_seed(seed)
        lowest.append(transform_counts(CouplingFlow(permutation="random"), 368).min())
    assert min(lowest) == 0


def test_an_unknown_permutation_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'random_pairs', 'reverse', 'random' or 'none', got 'x'"):
        CouplingFlow(permutation="x")._build_module(4, 1)
