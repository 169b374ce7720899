"""Grading on a Dask cluster gives exactly what grading here gives."""

from __future__ import annotations

import pickle

import pytest
from grading_helpers import GRADING, SIGN_ERROR, edit, full_plan, homework, solution, write

from coursekit.cli import main
from coursekit.grading import grade, grader, plan_to_json
from coursekit.grading.grader import _Options

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                  "(pip install 'coursekit[cluster]')")


@pytest.fixture(scope="module")
def cluster():
    # worker threads in this process: fast to start; what a remote worker would be
    # sent is checked to pickle in test_what_travels_to_workers_pickles
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local:
        yield local


def _submissions(folder):
    write(solution(), folder / "ann.ipynb")
    write(homework(), folder / "bob.ipynb")
    write(edit(solution(), *SIGN_ERROR), folder / "cy.ipynb")
    write("{broken", folder / "dee.ipynb")


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*.json")) if p.parent.name != "results"} | \
        {"gradebook.csv": (out / "gradebook.csv").read_bytes()}


def test_a_dask_cluster_grades_to_the_same_files_as_local_workers(cluster, tmp_path):
    _submissions(tmp_path / "subs")
    options = {"timeout": 60, "cell_timeout": 10, "progress": False}
    local = grade(GRADING, tmp_path / "subs", tmp_path / "here", workers=2, **options)
    remote = grade(GRADING, tmp_path / "subs", tmp_path / "there",
                   dask=cluster.scheduler_address, **options)
    assert [(r.name, r.status, r.score()) for r in remote] == \
        [(r.name, r.status, r.score()) for r in local]
    assert [r.status for r in remote] == ["ok", "errors", "ok", "invalid"]
    assert _files(tmp_path / "there") == _files(tmp_path / "here")


def test_what_travels_to_workers_pickles(cluster, tmp_path):
    plan, options = full_plan(), _Options(timeout=60, cell_timeout=10)
    assert plan_to_json(pickle.loads(pickle.dumps(plan))) == plan_to_json(plan)
    assert pickle.loads(pickle.dumps(options)) == options
    write(solution(), tmp_path / "subs" / "ann.ipynb")
    result, = grade(GRADING, tmp_path / "subs", tmp_path / "out", timeout=60, cell_timeout=10,
                    progress=False, dask=cluster.scheduler_address)
    back = pickle.loads(pickle.dumps(result))
    assert (back.name, back.status, back.score()) == ("ann", "ok", plan.max_points())


def test_cli_grades_on_the_scheduler_given_by_dask(cluster, tmp_path, capsys):
    _submissions(tmp_path / "subs")
    status = main(["grade", str(GRADING), str(tmp_path / "subs"), "--out", str(tmp_path / "o"),
                   "--dask", cluster.scheduler_address, "--timeout", "60", "--cell-timeout",
                   "10", "--no-progress"])
    assert status == 0
    assert "graded 4 submissions" in capsys.readouterr().out


def test_a_scheduler_that_cannot_be_reached_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(grader, "DASK_CONNECT_TIMEOUT", "1s")
    _submissions(tmp_path / "subs")
    status = main(["grade", str(GRADING), str(tmp_path / "subs"), "--out", str(tmp_path / "o"),
                   "--dask", "tcp://127.0.0.1:9", "--no-progress"])
    assert status == 2
    assert "could not reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


def test_a_grader_failure_on_one_submission_is_its_grader_error_there_too(cluster, tmp_path,
                                                                           monkeypatch):
    def fit(result, plan):  # a bug that fires on one submission (workers are threads here)
        if result.name == "bob":
            raise RuntimeError("a bug that fires on bob")
        return real(result, plan)

    real = grader.fit
    monkeypatch.setattr(grader, "fit", fit)
    write(solution(), tmp_path / "subs" / "ann.ipynb")
    write(solution(), tmp_path / "subs" / "bob.ipynb")
    options = {"timeout": 60, "cell_timeout": 10, "progress": False}
    local = grade(GRADING, tmp_path / "subs", tmp_path / "here", workers=2, **options)
    remote = grade(GRADING, tmp_path / "subs", tmp_path / "there",
                   dask=cluster.scheduler_address, **options)
    assert [(r.name, r.status, r.detail, r.note) for r in remote] == [
        ("ann", "ok", "every cell ran without error", ""),
        ("bob", "grader_error", "the grader failed while judging it (RuntimeError)",
         "a bug that fires on bob")]
    assert _files(tmp_path / "there") == _files(tmp_path / "here")
    assert [(r.name, r.status) for r in local] == [(r.name, r.status) for r in remote]
