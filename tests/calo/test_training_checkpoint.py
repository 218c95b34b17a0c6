"""Training checkpoints (`TrainingConfig.checkpoint`): a cut-off training resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generative.calo.geometry import CaloGeometry
from generative.calo.io import ShowerData
from generative.estimator import CorruptFileError
from generative.training import TrainingConfig, seeded, to_tensor, train
from tests.calo.conftest import fast_shower_model


class Interrupt(RuntimeError):
    """Raised by an epoch callback to simulate a run killed after that epoch."""


def _regression() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 400)
    return [to_tensor(x[:300]), to_tensor(y[:300])], [to_tensor(x[300:]), to_tensor(y[300:])]


def _module() -> torch.nn.Module:
    with seeded(1):
        # dropout draws from the global generator: a resume must restore that stream too
        return torch.nn.Sequential(
            torch.nn.Linear(3, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1)
        )


def _loss(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(module(x)[:, 0], y)


def _stop_after(epoch: int):
    def callback(index: int, *_: object) -> None:
        if index == epoch:
            raise Interrupt

    return callback


def test_interrupted_training_resumes_to_the_uninterrupted_weights(tmp_path):
    train_data, val_data = _regression()
    config = TrainingConfig(epochs=6, batch_size=32, patience=None, restore_best=False)
    reference = _module()
    full = train(reference, _loss, train_data, val_data, config=config, verbose=False)

    checkpointed = TrainingConfig(**{**config.to_dict(), "checkpoint": str(tmp_path / "a.ckpt")})
    module = _module()
    with pytest.raises(Interrupt):
        train(
            module,
            _loss,
            train_data,
            val_data,
            config=checkpointed,
            on_epoch_end=_stop_after(2),
            verbose=False,
        )
    module = _module()
    resumed = train(module, _loss, train_data, val_data, config=checkpointed, verbose=False)
    # killed inside epoch 2 (the callback runs before that epoch's checkpoint): 2 kept, 4 redone
    assert resumed.epochs_run == 6
    assert resumed.epochs_this_run == 4
    assert resumed.train_loss == full.train_loss
    assert resumed.val_loss == full.val_loss
    for a, b in zip(module.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # a finished training is read back, not repeated
    again = _module()
    history = train(again, _loss, train_data, val_data, config=checkpointed, verbose=False)
    assert history.epochs_this_run == 0
    assert history.val_loss == full.val_loss
    assert torch.equal(again[0].weight, reference[0].weight)


def test_a_checkpoint_of_another_training_is_refused(tmp_path):
    train_data, val_data = _regression()
    path = str(tmp_path / "a.ckpt")
    config = TrainingConfig(epochs=2, batch_size=32, checkpoint=path)
    train(_module(), _loss, train_data, val_data, config=config, verbose=False)
    other = [train_data[0], train_data[1] + 1.0]
    with pytest.raises(ValueError, match="belongs to another training"):
        train(_module(), _loss, other, val_data, config=config, verbose=False)
    data = bytearray((tmp_path / "a.ckpt").read_bytes())
    data[-20] ^= 0xFF
    (tmp_path / "a.ckpt").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="checksum"):
        train(_module(), _loss, train_data, val_data, config=config, verbose=False)


def test_time_limit_stops_before_the_epoch_that_would_pass_it():
    train_data, val_data = _regression()
    config = TrainingConfig(epochs=1000, batch_size=32, patience=None, time_limit=1e-9)
    history = train(_module(), _loss, train_data, val_data, config=config, verbose=False)
    assert history.epochs_run == 1
    assert history.time_limited
    assert history.stopped_early


def test_a_shower_model_resumes_its_networks_from_their_checkpoints(
    tmp_path, tiny_geometry: CaloGeometry, tiny_data: ShowerData
):
    training = {"epochs": 3, "batch_size": 128, "learning_rate": 3e-3}
    full = fast_shower_model("caloflow", tiny_geometry, training=training)
    full.fit(tiny_data.showers, tiny_data.energies)
    resumable = {**training, "checkpoint": str(tmp_path / "run.ckpt")}
    model = fast_shower_model("caloflow", tiny_geometry, training=resumable)
    model.fit(tiny_data.showers, tiny_data.energies)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.energy.ckpt", "run.shape.ckpt"]
    # a second fit reads the finished trainings back and gives the same model
    again = fast_shower_model("caloflow", tiny_geometry, training=resumable)
    again.fit(tiny_data.showers, tiny_data.energies)
    assert all(net.history_.epochs_this_run == 0 for net in again.models_.values())
    energies = 2.0 ** np.array([8, 10, 12])
    expected = full.sample(energies, random_state=4)
    np.testing.assert_array_equal(model.sample(energies, random_state=4), expected)
    np.testing.assert_array_equal(again.sample(energies, random_state=4), expected)
