"""Properties every density model must have, checked for each registered model at once."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from generative import MAF, DensityModel, NotFittedError, make_model
from generative import MODELS as REGISTRY
from tests.generative.conftest import fast_model, registered_fast_models

MODELS = registered_fast_models()


@pytest.fixture(params=MODELS)
def fitted(request, conditional_data):
    x, c = conditional_data
    return fast_model(request.param).fit(x, c)


@pytest.mark.parametrize("name", MODELS)
def test_fit_returns_self_and_sets_state(name, conditional_data):
    x, c = conditional_data
    model = fast_model(name)
    assert model.fit(x, c) is model
    assert model.n_features_in_ == 2
    assert model.n_context_ == 1
    assert model.history_.epochs_run >= 1


def test_sample_gives_one_event_per_context_row(fitted):
    context = np.linspace(0, 1, 37)[:, None]
    samples = fitted.sample(context, random_state=1)
    assert samples.shape == (37, 2)
    assert np.isfinite(samples).all()


def test_same_seed_same_samples_and_fit(fitted, conditional_data):
    x, c = conditional_data
    ctx = c[:50]
    np.testing.assert_array_equal(
        fitted.sample(ctx, random_state=5), fitted.sample(ctx, random_state=5)
    )
    assert not np.array_equal(
        fitted.sample(ctx, random_state=5), fitted.sample(ctx, random_state=6)
    )
    refit = fast_model(fitted.name).fit(x, c)
    np.testing.assert_array_equal(
        refit.sample(ctx, random_state=5), fitted.sample(ctx, random_state=5)
    )


def test_save_load_round_trip(fitted, conditional_data, tmp_path):
    x, c = conditional_data
    path = fitted.save(tmp_path / "model.pt")
    loaded = DensityModel.load(path)
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(
        loaded.sample(c[:40], random_state=9), fitted.sample(c[:40], random_state=9)
    )
    if fitted.has_log_prob:
        np.testing.assert_array_equal(
            loaded.log_prob(x[:40], c[:40]), fitted.log_prob(x[:40], c[:40])
        )
    assert loaded.history_ == fitted.history_


def test_load_checks_the_class(fitted, tmp_path):
    path = fitted.save(tmp_path / "model.pt")

    class Other(DensityModel):
        def _build_module(self, n_features, n_context): ...
        def _loss(self, module, x, c): ...
        def _sample_latent(self, module, n, c): ...

    with pytest.raises(TypeError, match="not a Other"):
        Other.load(path)


def test_log_prob_shape_or_clear_error(fitted, conditional_data):
    x, c = conditional_data
    if fitted.has_log_prob:
        lp = fitted.log_prob(x[:30], c[:30])
        assert lp.shape == (30,)
        assert np.isfinite(lp).all()
    else:
        with pytest.raises(NotImplementedError, match="not available"):
            fitted.log_prob(x[:30], c[:30])


@pytest.mark.parametrize("name", MODELS)
def test_use_before_fit_raises(name, conditional_data):
    x, c = conditional_data
    model = fast_model(name)
    with pytest.raises(NotFittedError):
        model.sample(c)
    with pytest.raises(NotFittedError):
        model.log_prob(x, c)
    with pytest.raises(NotFittedError):
        model.save("never-written.pt")


@pytest.mark.parametrize("name", MODELS)
def test_usable_by_name_and_clonable(name):
    # CATHODE builds its density model by name and clones it per fold and seed.
    model = fast_model(name)
    assert isinstance(model, REGISTRY[name])
    twin = clone(model)
    assert type(twin) is type(model)
    assert twin.get_params() == model.get_params()


def test_unknown_model_name_is_named():
    with pytest.raises(ValueError, match="unknown density model 'nope'; choose from"):
        make_model("nope")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda x, c: (np.where(np.arange(len(x))[:, None] == 3, np.nan, x), c), "NaN in 1 of"),
        (lambda x, c: (np.where(np.arange(len(x))[:, None] < 2, np.inf, x), c), "inf in 2 of"),
        (lambda x, c: (x, c[:-1]), "context has 1999 rows but the data have 2000"),
        (lambda x, c: (x[:0], c[:0]), "X is empty"),
        (lambda x, c: (x[:, :, None], c), "must be 2-D"),
        (
            lambda x, c: (x, np.where(np.arange(len(c))[:, None] == 0, np.nan, c)),
            "context contains NaN",
        ),
    ],
)
def test_bad_training_input_is_named(name, conditional_data, mutate, message):
    x, c = mutate(*conditional_data)
    with pytest.raises(ValueError, match=message):
        fast_model(name).fit(x, c)


def test_bad_input_after_fit_is_named(fitted, conditional_data):
    x, c = conditional_data
    with pytest.raises(ValueError, match="context has 3 columns, the model was fitted with 1"):
        fitted.sample(np.hstack([c, c, c]))
    if fitted.has_log_prob:
        with pytest.raises(ValueError, match="X has 3 columns, the model was fitted with 2"):
            fitted.log_prob(np.hstack([x, c]), c)
    with pytest.raises(ValueError, match="conditional on 1 variable"):
        fitted.sample(10)
    with pytest.raises(ValueError, match="context contains NaN"):
        fitted.sample(np.array([[np.nan]]))


def test_a_subclass_does_not_replace_its_registered_parent():
    class MyMAF(MAF):
        """A user's subclass that does not name itself."""

    assert REGISTRY["maf"] is MAF
    assert MyMAF not in REGISTRY.values()
