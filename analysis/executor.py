"""Executors with one call signature, `map(fn, tasks) -> list` in task order (coffea's pattern).

In process by default; a local process pool; or a Dask cluster through a `distributed.Client`
(LocalCluster, SLURMCluster, HTCondorCluster, ...) that the user creates and passes in.
Progress bars go to stderr and stay quiet when stderr is not a terminal.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from analysis.config import ExecutorConfig
from analysis.progress import UnitProgress

__all__ = [
    "DaskExecutor",
    "InProcessExecutor",
    "ProcessPoolExecutor",
    "configured_executor",
    "limited_threads",
    "make_executor",
]


def _progress(total: int, show: bool | None, desc: str) -> UnitProgress:
    return UnitProgress(total, desc, show)


class InProcessExecutor:
    """Run tasks one after the other in this process."""

    def __init__(self, progress: bool | None = None, desc: str = "tasks"):
        self.progress = progress
        self.desc = desc

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list:
        """Apply `fn` to every task; results in task order."""
        results = []
        with _progress(len(tasks), self.progress, self.desc) as bar:
            for task in tasks:
                results.append(fn(task))
                bar.update()
        return results


class ProcessPoolExecutor:
    """Run tasks in a local pool of `max_workers` processes (`fn` and tasks must pickle)."""

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: str | None = None,
        progress: bool | None = None,
        desc: str = "tasks",
    ):
        self.max_workers = max_workers
        self.mp_context = mp_context
        self.progress = progress
        self.desc = desc

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list:
        """Apply `fn` to every task in worker processes; results in task order."""
        context = multiprocessing.get_context(self.mp_context) if self.mp_context else None
        results: list = [None] * len(tasks)
        with (
            concurrent.futures.ProcessPoolExecutor(self.max_workers, mp_context=context) as pool,
            _progress(len(tasks), self.progress, self.desc) as bar,
        ):
            futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
        return results


class DaskExecutor:
    """Run tasks on a Dask cluster given a `distributed.Client` or a scheduler address."""

    def __init__(self, client_or_address: Any, progress: bool | None = None, desc: str = "tasks"):
        self.client_or_address = client_or_address
        self.progress = progress
        self.desc = desc

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list:
        """Submit every task to the cluster; results in task order."""
        from distributed import Client, as_completed

        owns_client = isinstance(self.client_or_address, str)
        client = Client(self.client_or_address) if owns_client else self.client_or_address
        try:
            futures = client.map(fn, list(tasks), pure=False)
            index = {future.key: i for i, future in enumerate(futures)}
            results: list = [None] * len(futures)
            with _progress(len(futures), self.progress, self.desc) as bar:
                for future in as_completed(futures):
                    results[index[future.key]] = future.result()
                    bar.update()
            return results
        finally:
            if owns_client:
                client.close()


_KINDS = {"inprocess": InProcessExecutor, "processes": ProcessPoolExecutor, "dask": DaskExecutor}


def make_executor(kind: str = "inprocess", **options: Any) -> Any:
    """Executor by name: "inprocess", "processes" (max_workers=) or "dask" (client_or_address=)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown executor kind {kind!r}; choose one of {sorted(_KINDS)}")
    return _KINDS[kind](**options)


@contextlib.contextmanager
def configured_executor(ex: ExecutorConfig) -> Iterator[Any]:
    """The executor the settings name; a LocalCluster it starts is closed afterwards."""
    n_workers = ex.n_workers or os.cpu_count() or 1
    if ex.kind == "inprocess":
        yield make_executor("inprocess")
    elif ex.kind == "processes":
        # Spawned, not forked: a fork of a process whose torch/OpenMP pools are running can hang.
        yield make_executor("processes", max_workers=n_workers, mp_context="spawn")
    elif ex.address is not None:
        yield make_executor("dask", client_or_address=ex.address)
    else:
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=n_workers, threads_per_worker=1) as cluster,
            Client(cluster) as client,
        ):
            yield make_executor("dask", client_or_address=client)


@contextlib.contextmanager
def limited_threads(n: int) -> Iterator[None]:
    """Let torch and the OpenMP/BLAS pools use at most `n` threads inside the block.

    Measured here: a flow fit with 2 torch threads on 2 cores with one other busy process
    took 18x longer than with 1 thread (threads spin waiting for each other), so the units of
    a search run single-threaded by default and scale by workers instead.
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(previous)
