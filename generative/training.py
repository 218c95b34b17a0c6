"""The one training loop of every torch model in the project.

It owns what all models need alike: a seeded validation split, mini-batches, Adam with a
learning-rate schedule, gradient clipping, early stopping with best-epoch restore, per-epoch
history and a progress bar. A model supplies only its loss (or, for adversarial training, its
own optimisation step).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from generative.settings import TrainingConfig, merge_settings

__all__ = [
    "History",
    "TrainingConfig",
    "merge_settings",
    "seeded",
    "split_indices",
    "to_tensor",
    "train",
]

LossFn = Callable[..., torch.Tensor]
#: a custom optimisation step: (batch tensors, epoch) -> training loss of the batch
StepFn = Callable[[Sequence[torch.Tensor], int], float]
EpochCallback = Callable[[int, torch.nn.Module, float, float], None]


@dataclass
class History:
    """What happened during training, epoch by epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    seconds: float = 0.0
    #: CPU seconds of the training process (summed over resumed runs, like `seconds`)
    cpu_seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0
    #: training stopped because the next epoch would have passed `TrainingConfig.time_limit`
    time_limited: bool = False
    #: epochs this call trained (fewer than `epochs_run` when it resumed from a checkpoint)
    epochs_this_run: int = 0

    @property
    def epochs_run(self) -> int:
        """Number of epochs actually trained."""
        return len(self.train_loss)

    @property
    def best_val_loss(self) -> float:
        """Lowest validation loss seen (NaN without validation data)."""
        return self.val_loss[self.best_epoch] if self.val_loss else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for saving with a model."""
        return dataclasses.asdict(self)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global generator seeded, restoring the outer state afterwards.

    Libraries such as nflows draw from the global generator; forking it keeps a model's random
    numbers independent of whatever else the process does.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def split_indices(
    n: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, validation) index arrays with `fraction` of `n` events in validation."""
    n_val = round(n * fraction)
    if fraction > 0 and (n_val < 1 or n - n_val < 1):
        raise ValueError(
            f"too few events ({n}) for a validation fraction of {fraction}: need at least one "
            "event in each of the training and validation sets"
        )
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def to_tensor(a: np.ndarray | None) -> torch.Tensor | None:
    """float32 tensor view of a numpy array (None passes through)."""
    return None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)


def _batches(
    tensors: Sequence[torch.Tensor | None], batch_size: int, generator: torch.Generator | None
) -> Iterator[list[torch.Tensor | None]]:
    n = next(t for t in tensors if t is not None).shape[0]
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    edges = [*range(0, n, batch_size), n]
    # A lone trailing event joins the batch before it: batch statistics (a flow's batch
    # normalisation) of a single event are NaN and would end the training.
    if len(edges) > 2 and n - edges[-2] < 2:
        del edges[-2]
    for start, stop in itertools.pairwise(edges):
        idx = order[start:stop]
        yield [None if t is None else t[idx] for t in tensors]


def _scheduler(
    optimizer: torch.optim.Optimizer, config: TrainingConfig
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    if config.lr_schedule == "cosine" and config.time_limit is None:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.lr_schedule == "plateau":
        patience = max(1, (config.patience or 10) // 3)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=patience)
    return None


def _mean_loss(
    module: torch.nn.Module,
    loss_fn: LossFn,
    tensors: Sequence[torch.Tensor | None],
    batch_size: int,
    device: torch.device,
) -> float:
    was_training = module.training
    module.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in _batches(tensors, batch_size, None):
            batch = [None if t is None else t.to(device) for t in batch]
            n = next(t for t in batch if t is not None).shape[0]
            total += float(loss_fn(module, *batch)) * n
            count += n
    module.train(was_training)
    return total / count


def train(
    module: torch.nn.Module,
    loss_fn: LossFn,
    train_data: Sequence[torch.Tensor | None],
    val_data: Sequence[torch.Tensor | None] | None = None,
    *,
    config: TrainingConfig | None = None,
    random_state: int = 0,
    device: str | torch.device = "cpu",
    verbose: bool = True,
    desc: str = "training",
    step_fn: StepFn | None = None,
    parameters: Sequence[torch.nn.Parameter] | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> History:
    """Train `module` in place to minimise `loss_fn(module, *batch)` and return its history.

    `train_data` and `val_data` are sequences of tensors with events along the first axis (None
    entries are passed through, e.g. a missing context). `step_fn` replaces the default Adam step
    (adversarial models); `on_epoch_end(epoch, module, train_loss, val_loss)` lets callers keep
    snapshots. The progress bar shows only when `verbose` and stderr is a terminal.

    With `config.checkpoint` the state (weights, optimiser, schedule, random streams, history,
    best epoch) is written atomically after every epoch; a later call with the same file, data,
    network and settings continues from the last finished epoch and ends with the weights an
    uninterrupted run would have, and a call after a finished training returns its result at
    once. `config.time_limit` stops before an epoch expected to end past that many seconds (and
    a cosine schedule then anneals over the epochs or the time, whichever runs out first).
    """
    config = config or TrainingConfig()
    if config.checkpoint and step_fn is not None:
        raise ValueError("checkpoints need the default optimisation step (step_fn is not saved)")
    device = torch.device(device)
    module.to(device)
    history = History(
        n_train=next(t for t in train_data if t is not None).shape[0],
        n_val=0 if val_data is None else next(t for t in val_data if t is not None).shape[0],
    )
    params = list(parameters) if parameters is not None else list(module.parameters())
    optimizer = torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config)
    generator = torch.Generator().manual_seed(random_state)
    best_state, best_loss, stale = None, math.inf, 0
    start, done, elapsed = time.perf_counter(), False, 0.0
    cpu_start, cpu_elapsed = time.process_time(), 0.0
    fingerprint = (
        _fingerprint(module, train_data, val_data, config, random_state)
        if config.checkpoint
        else None
    )
    saved = _read_checkpoint(config.checkpoint, fingerprint) if config.checkpoint else None
    if saved is not None:
        meta, state = saved
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        best_state = state["best"] or None
        best_loss, stale, done = meta["best_loss"], meta["stale"], meta["done"]
        history = History(**{**meta["history"], "epochs_this_run": 0})
        elapsed, cpu_elapsed = history.seconds, history.cpu_seconds

    def clock() -> None:
        history.seconds = elapsed + time.perf_counter() - start
        history.cpu_seconds = cpu_elapsed + time.process_time() - cpu_start

    def save_checkpoint() -> None:
        clock()
        meta = {
            "fingerprint": fingerprint,
            "history": history.to_dict(),
            "best_loss": best_loss,
            "stale": stale,
            "done": done,
        }
        state = {
            "module": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": {} if scheduler is None else scheduler.state_dict(),
            "generator": generator.get_state(),
            "rng": torch.get_rng_state(),
            "best": best_state or {},
        }
        _write_checkpoint(config.checkpoint, meta, state)

    first = history.epochs_run
    bar = tqdm(
        range(first, first if done else config.epochs),
        desc=desc,
        disable=not (verbose and sys.stderr.isatty()),
        leave=False,
        file=sys.stderr,
    )
    with seeded(random_state):
        if saved is not None:
            torch.set_rng_state(saved[1]["rng"])
        for epoch in bar:
            spent = elapsed + time.perf_counter() - start
            # stop before an epoch that would, at the mean pace so far, end past the limit
            pace = spent / max(history.epochs_run, 1)
            if (
                config.time_limit is not None
                and history.epochs_run
                and spent + pace > config.time_limit
            ):
                history.time_limited = history.stopped_early = True
                break
            module.train()
            total, count = 0.0, 0
            for batch in _batches(train_data, config.batch_size, generator):
                batch = [None if t is None else t.to(device) for t in batch]
                n = next(t for t in batch if t is not None).shape[0]
                if step_fn is not None:
                    loss_value = step_fn(batch, epoch)
                else:
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(module, *batch)
                    loss.backward()
                    if config.clip_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(params, config.clip_grad_norm)
                    optimizer.step()
                    loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"{desc}: training loss became {loss_value} in epoch {epoch}; lower the "
                        "learning rate or check the preprocessing of the inputs"
                    )
                total += loss_value * n
                count += n
            train_loss = total / count
            val_loss = (
                _mean_loss(module, loss_fn, val_data, max(config.batch_size, 4096), device)
                if val_data is not None
                else train_loss
            )
            history.train_loss.append(train_loss)
            history.learning_rate.append(optimizer.param_groups[0]["lr"])
            history.epochs_this_run += 1
            if val_data is not None:
                history.val_loss.append(val_loss)
            if on_epoch_end is not None:
                on_epoch_end(epoch, module, train_loss, val_loss)
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")

            if val_loss < best_loss - config.min_delta:
                best_loss, stale, history.best_epoch = val_loss, 0, epoch
                if config.restore_best:
                    best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            elif scheduler is not None:
                scheduler.step()
            elif config.lr_schedule == "cosine":
                # with a time limit the cosine runs over the epochs or the time, whichever ends
                # first, so a slowed-down training still ends annealed
                spent = elapsed + time.perf_counter() - start
                progress = min(1.0, max((epoch + 1) / config.epochs, spent / config.time_limit))
                for group in optimizer.param_groups:
                    group["lr"] = 0.5 * config.learning_rate * (1.0 + math.cos(math.pi * progress))
            if config.patience is not None and stale >= config.patience:
                history.stopped_early = True
            if config.checkpoint and not history.stopped_early:
                save_checkpoint()
            if history.stopped_early:
                break
    if config.checkpoint and not done:
        done = True
        save_checkpoint()

    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    clock()
    return history


def _fingerprint(
    module: torch.nn.Module,
    train_data: Sequence[torch.Tensor | None],
    val_data: Sequence[torch.Tensor | None] | None,
    config: TrainingConfig,
    random_state: int,
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: data, network shapes, settings, seed."""
    digest = hashlib.sha256()
    for tensor in [*train_data, *(val_data or [])]:
        if tensor is not None:
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    settings = {k: v for k, v in config.to_dict().items() if k not in ("checkpoint", "time_limit")}
    shapes = {k: list(v.shape) for k, v in module.state_dict().items()}
    return {
        "data": digest.hexdigest(),
        "settings": settings,
        "shapes": shapes,
        "seed": random_state,
    }


def _read_checkpoint(
    path: str | os.PathLike, fingerprint: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(meta, state) of a checkpoint of this very training, None when there is none yet."""
    from generative.estimator import unpack  # the envelope module imports this one

    path = Path(path)
    if not path.is_file():
        return None
    meta, state = unpack(path.read_bytes(), source=f"training checkpoint {path}")
    if json.loads(json.dumps(fingerprint)) != meta.get("fingerprint"):
        raise ValueError(
            f"training checkpoint {path} belongs to another training (different data, network "
            "or settings): delete it or give another checkpoint file"
        )
    return meta, state


def _write_checkpoint(path: str | os.PathLike, meta: dict[str, Any], state: dict[str, Any]) -> None:
    from generative.estimator import pack
    from generative.fileio import write_atomic

    write_atomic(path, pack(meta, state))
