"""Executors: same results, in task order, whichever executor runs the tasks."""

import numpy as np
import pytest
from distributed import Client, LocalCluster

from analysis.executor import DaskExecutor, InProcessExecutor, ProcessPoolExecutor, make_executor


def seeded_draw(seed: np.random.SeedSequence) -> float:
    """A task whose result depends on its own seed only."""
    return float(np.random.default_rng(seed).normal())


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ArithmeticError("task 3 failed")
    return x


TASKS = np.random.SeedSequence(42).spawn(12)


@pytest.fixture(scope="module")
def dask_client():
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(params=["inprocess", "processes", "dask"])
def executor(request, dask_client):
    if request.param == "inprocess":
        return InProcessExecutor()
    if request.param == "processes":
        return ProcessPoolExecutor(max_workers=2)
    return DaskExecutor(dask_client)


def test_results_are_identical_and_in_task_order(executor):
    expected = [seeded_draw(seed) for seed in TASKS]
    assert executor.map(seeded_draw, TASKS) == expected


def test_task_errors_propagate(executor):
    with pytest.raises(ArithmeticError, match="task 3 failed"):
        executor.map(fail_on_three, list(range(6)))


def test_dask_executor_accepts_a_scheduler_address(dask_client):
    address = dask_client.scheduler.address
    assert DaskExecutor(address).map(seeded_draw, TASKS[:3]) == [seeded_draw(s) for s in TASKS[:3]]


def test_progress_bar_is_quiet_off_a_terminal(capsys):
    InProcessExecutor().map(abs, [-1, -2])
    assert capsys.readouterr().err == ""


def test_make_executor_by_name():
    assert isinstance(make_executor(), InProcessExecutor)
    pool = make_executor("processes", max_workers=3)
    assert isinstance(pool, ProcessPoolExecutor)
    assert pool.max_workers == 3
    assert isinstance(make_executor("dask", client_or_address="tcp://nowhere:1"), DaskExecutor)
    with pytest.raises(ValueError, match="unknown executor kind 'slurm'"):
        make_executor("slurm")
