"""coursekit.experiments.sweep: grid order, records, failures, seeds, tables, and the executors.

The functions swept are defined at module level so that process pools and Dask
can pickle them. Every executor must give the serial run's records exactly
(apart from the measured ``time``).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import os

import numpy as np
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


def _without_time(result):
    return [{k: v for k, v in record.items() if k != "time"} for record in result]


@pytest.fixture(scope="module")
def serial():
    return sweep(noisy_quadratic, GRID, executor="serial", repeats=2)


def test_grid_expands_like_nested_loops_in_key_order():
    expected = [{"a": a, "b": b, "c": c}
                for a in [1, 2] for b in ["x", "y", "z"] for c in [True, False]]
    assert grid_points({"a": [1, 2], "b": ["x", "y", "z"], "c": [True, False]}) == expected
    explicit = [{"lr": 0.1}, {"lr": 0.2, "momentum": 0.9}]
    assert grid_points(explicit) == explicit


def test_records_hold_params_seed_fields_time_and_error(serial):
    assert len(serial) == 6 * 2
    assert serial.params == ("optimizer", "lr")
    assert serial.fields == ("final_loss", "min_loss")
    points = list(itertools.product(GRID["optimizer"], GRID["lr"]))
    for k, record in enumerate(serial):
        optimizer, lr = points[k // 2]
        assert (record["point"], record["repeat"]) == (k // 2, k % 2)
        assert (record["optimizer"], record["lr"]) == (optimizer, lr)
        assert record["time"] >= 0
        if lr > 0:
            assert record["error"] is None
            assert record["final_loss"] == noisy_quadratic(optimizer, lr, record["seed"])[
                "final_loss"]


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(serial):
    failed = serial.errors()
    assert [(r["optimizer"], r["lr"]) for r in failed] == [("sgd", -1.0)] * 2 + [
        ("adam", -1.0)] * 2
    assert all(r["error"] == "ValueError: lr must be positive, got -1.0" for r in failed)
    assert "final_loss" not in failed[0]
    assert "raise ValueError" in serial.tracebacks[2]
    assert serial.tracebacks[0] is None


def test_seeds_are_shared_across_points_and_differ_across_repeats(serial):
    seeds = {(r["point"], r["repeat"]): r["seed"] for r in serial}
    for repeat in range(2):
        expected = int(np.random.SeedSequence([0, repeat]).generate_state(1)[0])
        assert {seeds[point, repeat] for point in range(6)} == {expected}
    assert seeds[0, 0] != seeds[0, 1]
    again = sweep(noisy_quadratic, GRID, executor="serial", repeats=2)
    assert _without_time(again) == _without_time(serial)


def test_seed_per_point_gives_every_run_its_own_seed():
    result = sweep(noisy_quadratic, GRID, executor="serial", repeats=2, seed_per_point=True)
    seeds = result.column("seed")
    assert len(set(seeds)) == len(seeds)
    assert seeds[3] == int(np.random.SeedSequence([0, 1, 1]).generate_state(1)[0])


def test_a_number_is_stored_as_value_and_no_seed_is_passed_unasked():
    result = sweep(square, {"x": [1, 2, 3]}, executor="serial")
    assert result.column("value") == [1, 4, 9]
    assert "seed" not in result[0]


@pytest.mark.parametrize("reduce", ["mean", "median", "min", "max"])
def test_pivot_reduces_repeats_in_grid_order_and_leaves_failures_nan(serial, reduce):
    pivot = serial.pivot("optimizer", "lr", "final_loss", reduce=reduce)
    assert pivot.rows == ["sgd", "adam"] and pivot.cols == [0.1, -1.0, 0.01]
    for i, optimizer in enumerate(pivot.rows):
        for j, lr in enumerate(pivot.cols):
            runs = [r["final_loss"] for r in serial
                    if r["optimizer"] == optimizer and r["lr"] == lr and r["error"] is None]
            if runs:
                assert len(runs) == 2
                assert pivot.values[i, j] == getattr(np, reduce)(np.array(runs))
            else:
                assert math.isnan(pivot.values[i, j])
    with pytest.raises(ValueError, match="two records"):
        serial.pivot("optimizer", "lr", "final_loss", reduce=None)


def test_pivot_refuses_to_mix_a_third_varying_parameter():
    grid = [{"optimizer": "sgd", "lr": 0.1, "width": w} for w in (8, 16)]
    result = sweep(_with_width, grid, executor="serial")
    with pytest.raises(ValueError, match=r"^the parameters other than row and col must be "
                                         r"fixed first .*got \['width'\] varying"):
        result.pivot("optimizer", "lr", "final_loss")
    narrowed = result.where(width=8).pivot("optimizer", "lr", "final_loss")
    assert narrowed.values.shape == (1, 1)


def _with_width(optimizer, lr, width, seed):
    return noisy_quadratic(optimizer, lr, seed)


def test_heatmap_draws_the_pivot_with_labels(serial):
    plt = pytest.importorskip("matplotlib.pyplot")
    ax = serial.heatmap("optimizer", "lr", "final_loss", fmt=".3f")
    pivot = serial.pivot("optimizer", "lr", "final_loss")
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("optimizer", "lr")
    annotations = [text.get_text() for text in ax.texts]
    assert f"{pivot.values[1, 2]:.3f}" in annotations
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sgd", "adam"]
    plt.close(ax.figure)


def test_best_picks_the_smallest_successful_value(serial):
    best = serial.best("final_loss")
    successful = [r["final_loss"] for r in serial if r["error"] is None]
    assert best["final_loss"] == min(successful)
    assert serial.best("final_loss", mode="max")["final_loss"] == max(successful)
    with pytest.raises(ValueError, match=r"^mode must be one of 'min', 'max', got 'mean'"):
        serial.best("final_loss", mode="mean")
    nan = sweep(lambda x: {"loss": math.nan}, {"x": [1, 2]}, executor="serial")
    with pytest.raises(ValueError, match=r"^field must be a field that is finite in a successful"):
        nan.best("loss")


def test_text_table_has_a_header_a_rule_and_a_row_per_run(serial):
    lines = serial.to_text().splitlines()
    header = lines[0].split()
    assert header == ["optimizer", "lr", "repeat", "seed", "final_loss", "min_loss", "time",
                      "error"]
    assert set(lines[1]) == {"-", " "} and len(lines) == 2 + len(serial)
    first = serial[0]
    assert lines[2].split()[:2] == ["sgd", "0.1"]
    assert f"{first['final_loss']:.4g}" in lines[2]
    assert "ValueError: lr must be positive" in lines[4]
    assert str(serial) == serial.to_text()


def curve(lr):
    if lr < 0:
        raise ValueError("lr must be positive; " + "this message goes on " * 5)
    return {"curve": [1.0 - lr * k for k in range(6)], "final": 1.0 - 5 * lr, "note": None}


def test_text_table_shortens_lists_and_long_errors_and_right_aligns_numbers():
    result = sweep(curve, {"lr": [0.125, -1.0, 0.05]}, executor="serial")
    lines = result.to_text(precision=2).splitlines()
    assert lines[0].split() == ["lr", "curve", "final", "note", "time", "error"]
    widths = [len(dashes) for dashes in lines[1].split()]
    assert widths[0] == len("0.12")
    assert lines[2].startswith("0.12  [6 values]")  # the lr column right-aligned, .2g
    error = result.errors()[0]["error"]
    assert len(error) > 60 and lines[3].startswith("  -1")
    assert lines[3].endswith(f"  {error[:57]}...")
    assert lines[4].startswith("0.05  [6 values]") and "None" not in lines[4]


def test_default_process_pool_matches_serial(serial):
    pooled = sweep(noisy_quadratic, GRID, repeats=2)
    assert _without_time(pooled) == _without_time(serial)
    pids = sweep(process_id, {"x": [1, 2, 3, 4]}).column("pid")
    assert os.getpid() not in pids


def test_thread_pool_executor_matches_serial(serial):
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        threaded = sweep(noisy_quadratic, GRID, executor=pool, repeats=2)
    assert _without_time(threaded) == _without_time(serial)


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
    assert _without_time(on_dask) == _without_time(serial)


def test_a_lost_worker_process_is_recorded_not_raised():
    result = sweep(exit_worker, {"x": [1, 2]})
    assert all(r["error"].startswith("BrokenProcessPool") for r in result)


def test_unpicklable_function_for_a_process_pool_is_explained():
    with pytest.raises(TypeError, match=r"^fn must be picklable.*executor='serial'"):
        sweep(lambda x: x, {"x": [1]})


def test_returned_fields_that_clash_with_columns_are_an_error():
    result = sweep(returns_time, {"x": [1]}, executor="serial")
    assert "clash with the table's columns" in result[0]["error"]


def test_a_result_that_is_not_fields_is_a_recorded_error():
    result = sweep(lambda x: "text", {"x": [1]}, executor="serial")
    assert result[0]["error"].startswith("TypeError: fn's result must be a dict with str keys")
    result = sweep(lambda x: {1: x}, {"x": [1]}, executor="serial")
    assert result[0]["error"].startswith("TypeError: fn's result must be")


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
