"""coursekit.experiments.sweep: grid order, the table of runs, failures, seeds, executors.

The functions swept are defined at module level so that process pools and Dask
can pickle them. Every executor must give the serial run's table exactly
(apart from the measured ``time``).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os

import numpy as np
import pandas as pd
import pytest

from coursekit.experiments.sweep import grid_points, sweep

GRID = {"optimizer": ["sgd", "adam"], "lr": [0.1, -1.0, 0.01]}


def noisy_quadratic(optimizer, lr, seed):
    """A stand-in for a training run: deterministic given its arguments and seed."""
    if lr < 0:
        raise ValueError(f"lr must be positive, got {lr}")
    rng = np.random.default_rng(seed)
    losses = (1 - lr) ** np.arange(20) + 0.01 * rng.standard_normal(20)
    bonus = 0.5 if optimizer == "adam" else 0.0
    return {"final_loss": float(losses[-1]) + bonus, "min_loss": float(losses.min())}


def square(x):
    return x * x


def process_id(x):
    return {"pid": os.getpid()}


def exit_worker(x):
    os._exit(3)


def returns_time(x):
    return {"time": 1.0}


def assert_same_runs(result, expected):
    """The same table apart from the measured ``time`` (NaN equal to NaN)."""
    pd.testing.assert_frame_equal(result.drop(columns="time"), expected.drop(columns="time"))


@pytest.fixture(scope="module")
def serial():
    return sweep(noisy_quadratic, GRID, executor="serial", repeats=2)


def test_grid_expands_like_nested_loops_in_key_order():
    expected = [{"a": a, "b": b, "c": c}
                for a in [1, 2] for b in ["x", "y", "z"] for c in [True, False]]
    assert grid_points({"a": [1, 2], "b": ["x", "y", "z"], "c": [True, False]}) == expected
    explicit = [{"lr": 0.1}, {"lr": 0.2, "momentum": 0.9}]
    assert grid_points(explicit) == explicit


def test_rows_hold_params_seed_fields_time_and_error(serial):
    assert isinstance(serial, pd.DataFrame) and len(serial) == 6 * 2
    assert list(serial.columns) == ["point", "repeat", "optimizer", "lr", "seed", "final_loss",
                                    "min_loss", "time", "error"]
    assert serial.attrs["params"] == ("optimizer", "lr")
    assert serial.attrs["fields"] == ("final_loss", "min_loss")
    points = list(itertools.product(GRID["optimizer"], GRID["lr"]))
    for k, record in enumerate(serial.to_dict("records")):
        optimizer, lr = points[k // 2]
        assert (record["point"], record["repeat"]) == (k // 2, k % 2)
        assert (record["optimizer"], record["lr"]) == (optimizer, lr)
        assert record["time"] >= 0
        if lr > 0:
            assert record["error"] is None
            assert record["final_loss"] == noisy_quadratic(optimizer, lr, record["seed"])[
                "final_loss"]


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(serial):
    failed = serial[serial["error"].notna()]
    assert list(zip(failed["optimizer"], failed["lr"], strict=True)) == [("sgd", -1.0)] * 2 + [
        ("adam", -1.0)] * 2
    assert set(failed["error"]) == {"ValueError: lr must be positive, got -1.0"}
    assert failed["final_loss"].isna().all()
    assert sorted(serial.attrs["tracebacks"]) == list(failed.index)
    assert "raise ValueError" in serial.attrs["tracebacks"][2]
    succeeded = serial[serial["error"].isna()]
    assert succeeded["final_loss"].notna().all() and len(succeeded) == 8


def test_seeds_are_shared_across_points_and_differ_across_repeats(serial):
    seeds = {(r["point"], r["repeat"]): r["seed"] for r in serial.to_dict("records")}
    for repeat in range(2):
        expected = int(np.random.SeedSequence([0, repeat]).generate_state(1)[0])
        assert {seeds[point, repeat] for point in range(6)} == {expected}
    assert seeds[0, 0] != seeds[0, 1]
    again = sweep(noisy_quadratic, GRID, executor="serial", repeats=2)
    assert_same_runs(again, serial)


def test_seed_per_point_gives_every_run_its_own_seed():
    result = sweep(noisy_quadratic, GRID, executor="serial", repeats=2, seed_per_point=True)
    seeds = list(result["seed"])
    assert len(set(seeds)) == len(seeds)
    assert seeds[3] == int(np.random.SeedSequence([0, 1, 1]).generate_state(1)[0])


def test_a_number_is_stored_as_value_and_no_seed_is_passed_unasked():
    result = sweep(square, {"x": [1, 2, 3]}, executor="serial")
    assert list(result["value"]) == [1, 4, 9]
    assert "seed" not in result.columns


def test_the_table_pivots_and_groups_like_any_dataframe(serial):
    """What the course relies on: pandas idioms give the per-cell means of the runs."""
    grid = serial.pivot_table(index="optimizer", columns="lr", values="final_loss",
                              sort=False)
    assert list(grid.index) == ["sgd", "adam"] and list(grid.columns) == [0.1, 0.01]
    for optimizer in grid.index:
        for lr in grid.columns:
            runs = [r["final_loss"] for r in serial.to_dict("records")
                    if r["optimizer"] == optimizer and r["lr"] == lr]
            assert len(runs) == 2 and grid.loc[optimizer, lr] == pytest.approx(np.mean(runs))
    spread = serial.groupby(["optimizer", "lr"], sort=False)["final_loss"].agg(["mean", "sem"])
    runs = serial.query("optimizer == 'adam' and lr == 0.1")["final_loss"].to_numpy()
    assert spread.loc[("adam", 0.1), "sem"] == pytest.approx(runs.std(ddof=1) / np.sqrt(2))


def curve(lr):
    if lr < 0:
        raise ValueError("lr must be positive; " + "this message goes on " * 5)
    return {"curve": [1.0 - lr * k for k in range(6)], "final": 1.0 - 5 * lr, "note": None}


def test_list_fields_are_kept_whole_and_a_failed_run_has_none():
    result = sweep(curve, {"lr": [0.125, -1.0, 0.05]}, executor="serial")
    assert result.at[0, "curve"] == curve(0.125)["curve"]
    assert result.at[1, "error"].startswith("ValueError: lr must be positive; this message")
    assert result["final"].isna().tolist() == [False, True, False]


def test_default_process_pool_matches_serial(serial):
    pooled = sweep(noisy_quadratic, GRID, repeats=2)
    assert_same_runs(pooled, serial)
    pids = list(sweep(process_id, {"x": [1, 2, 3, 4]})["pid"])
    assert os.getpid() not in pids


def test_thread_pool_executor_matches_serial(serial):
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        threaded = sweep(noisy_quadratic, GRID, executor=pool, repeats=2)
    assert_same_runs(threaded, serial)


def test_dask_local_cluster_matches_serial(serial):
    distributed = pytest.importorskip(
        "distributed", reason="Dask distributed is the optional 'cluster' extra")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = sweep(noisy_quadratic, GRID, executor=client.get_executor(pure=False),
                        repeats=2)
        workers = len(client.scheduler_info()["workers"])
    assert workers == 2
    assert_same_runs(on_dask, serial)


def test_a_lost_worker_process_is_recorded_not_raised():
    result = sweep(exit_worker, {"x": [1, 2]})
    assert all(error.startswith("BrokenProcessPool") for error in result["error"])


def test_unpicklable_function_for_a_process_pool_is_explained():
    with pytest.raises(TypeError, match=r"^fn must be picklable.*executor='serial'"):
        sweep(lambda x: x, {"x": [1]})


def test_returned_fields_that_clash_with_columns_are_an_error():
    result = sweep(returns_time, {"x": [1]}, executor="serial")
    assert "clash with the table's columns" in result.at[0, "error"]


def test_a_result_that_is_not_fields_is_a_recorded_error():
    result = sweep(lambda x: "text", {"x": [1]}, executor="serial")
    assert result.at[0, "error"].startswith("TypeError: fn's result must be a dict with str keys")
    result = sweep(lambda x: {1: x}, {"x": [1]}, executor="serial")
    assert result.at[0, "error"].startswith("TypeError: fn's result must be")


@pytest.mark.parametrize(("grid", "match"), [
    ({}, "^grid must be a non-empty dict of lists"),
    ({"lr": 0.1}, r"^grid\['lr'\] must be a non-empty list of values, got 0.1"),
    ({"lr": "0.1"}, r"^grid\['lr'\] must be a non-empty list"),
    ({"lr": []}, r"^grid\['lr'\] must be a non-empty list"),
    ({"time": [1]}, "^grid parameter names must be identifiers other than .*got 'time'"),
    ({"a b": [1]}, "^grid parameter names must be identifiers"),
    ([{"lr": 1}, 3], r"^grid\[1\] must be a dict"),
    ([], "^grid must be a non-empty dict of lists or a non-empty list of dicts"),
])
def test_bad_grids_are_named(grid, match):
    with pytest.raises(ValueError, match=match):
        sweep(square, grid, executor="serial")


def test_bad_fn_executor_repeats_and_seed_are_named():
    with pytest.raises(TypeError, match=r"^executor must be None, 'serial' or"):
        sweep(square, {"x": [1]}, executor="dask")
    with pytest.raises(ValueError, match=r"^repeats must be an integer >= 1"):
        sweep(square, {"x": [1]}, repeats=0)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0"):
        sweep(square, {"x": [1]}, seed=-1)
    with pytest.raises(TypeError, match=r"^fn must be callable"):
        sweep(3, {"x": [1]})
