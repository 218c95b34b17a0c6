"""The shared training loop: seeding, early stopping, best-epoch restore, history."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generative.training import TrainingConfig, split_indices, train


def _regression(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=gen)
    return x, y


def _mse(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.mean((module(x) - y) ** 2)


def _fit(seed: int, config: TrainingConfig, **kwargs):
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x, y = _regression()
    history = train(
        module,
        _mse,
        [x[:400], y[:400]],
        [x[400:], y[400:]],
        config=config,
        random_state=seed,
        verbose=False,
        **kwargs,
    )
    return module, history


def test_same_seed_gives_same_numbers():
    config = TrainingConfig(epochs=5, batch_size=64)
    m1, h1 = _fit(1, config)
    m2, h2 = _fit(1, config)
    assert h1.train_loss == h2.train_loss
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)
    _, h3 = _fit(2, config)
    assert h3.train_loss != h1.train_loss


def test_loss_decreases_and_history_is_kept():
    _, history = _fit(0, TrainingConfig(epochs=30, batch_size=64, learning_rate=1e-2))
    assert history.epochs_run == len(history.val_loss) == len(history.learning_rate)
    assert history.val_loss[-1] < 0.2 * history.val_loss[0]
    assert history.n_train == 400
    assert history.n_val == 112


def test_early_stopping_and_best_epoch_restore():
    # A learning rate far too large makes the validation loss bounce: patience must stop it,
    # and the weights of the best epoch must come back.
    config = TrainingConfig(
        epochs=200,
        batch_size=32,
        learning_rate=0.5,
        patience=3,
        lr_schedule="constant",
        clip_grad_norm=None,
    )
    snapshots: dict[int, dict] = {}

    def keep(epoch, module, train_loss, val_loss):
        snapshots[epoch] = {k: v.clone() for k, v in module.state_dict().items()}

    module, history = _fit(0, config, on_epoch_end=keep)
    assert history.stopped_early
    assert history.epochs_run == history.best_epoch + 1 + config.patience
    best = snapshots[history.best_epoch]
    for key, value in module.state_dict().items():
        assert torch.equal(value, best[key])


def test_cosine_schedule_lowers_learning_rate():
    _, history = _fit(0, TrainingConfig(epochs=6, batch_size=128, patience=None))
    assert history.learning_rate[0] == pytest.approx(1e-3)
    assert history.learning_rate[-1] < history.learning_rate[0]


def test_non_finite_loss_raises():
    def nan_loss(module, x, y):
        return module(x).sum() * float("nan")

    module = torch.nn.Linear(3, 1)
    x, y = _regression(64)
    with pytest.raises(FloatingPointError, match="training loss became nan"):
        train(module, nan_loss, [x, y], config=TrainingConfig(epochs=2), verbose=False)


def test_split_indices_is_seeded_and_disjoint():
    a_tr, a_va = split_indices(100, 0.2, np.random.default_rng(3))
    _, b_va = split_indices(100, 0.2, np.random.default_rng(3))
    np.testing.assert_array_equal(a_va, b_va)
    assert len(a_va) == 20
    assert not set(a_tr) & set(a_va)
    assert len(a_tr) + len(a_va) == 100


def test_split_with_too_few_events_raises():
    with pytest.raises(ValueError, match="too few events"):
        split_indices(1, 0.2, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("learning_rate", -1.0), ("validation_fraction", 1.0), ("lr_schedule", "x")],
)
def test_invalid_config_names_the_setting(field, value):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**{field: value})


def test_coerce_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainingConfig.coerce({"epoch": 3})


def test_a_lone_trailing_event_joins_the_last_batch_so_batch_statistics_stay_finite():
    # 401 training events at batch 100: a last batch of one event would give batch
    # normalisation a NaN variance; the flow trains through instead.
    from generative.flows import MAF

    rng = np.random.default_rng(0)
    x, context = rng.normal(size=(401, 2)), rng.uniform(size=(401, 1))
    training = {"epochs": 2, "batch_size": 100, "validation_fraction": 0.0}
    flow = MAF(n_transforms=2, hidden_features=8, training=training, random_state=0)
    flow.fit(x, context)
    assert flow.history_.n_train == 401
    assert np.all(np.isfinite(flow.history_.train_loss))


def test_every_event_is_in_one_training_batch_per_epoch():
    from generative.training import _batches

    index = torch.arange(9)
    for n, sizes in ((9, [4, 5]), (8, [4, 4]), (1, [1])):
        batches = list(_batches([index[:n]], 4, torch.Generator().manual_seed(0)))
        assert [len(b[0]) for b in batches] == sizes
        assert sorted(torch.cat([b[0] for b in batches]).tolist()) == list(range(n))
