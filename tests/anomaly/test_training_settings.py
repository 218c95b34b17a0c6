"""Training settings have one nested shape and a partial mapping merges with the defaults."""

import numpy as np

from anomaly.cathode import FAST_MAF, make_density_model


def test_partial_density_training_keeps_the_default_patience():
    seed = np.random.SeedSequence(0)
    model = make_density_model("maf", {"training": {"epochs": 5}}, seed)
    assert model.training == {**FAST_MAF["training"], "epochs": 5}
    assert model.training["patience"] == FAST_MAF["training"]["patience"]
    assert model.n_transforms == FAST_MAF["n_transforms"]
