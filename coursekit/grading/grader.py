"""Grade submissions: run each in its own process, then judge it here, in the grader.

:func:`grade_notebook` grades one notebook against a :class:`~coursekit.grading.spec.Plan`;
:func:`grade` grades a folder of them in parallel (threads waiting on one child
process per submission, or tasks on a Dask cluster) and writes what
:mod:`coursekit.grading.report` describes: a record and feedback per submission,
``gradebook.csv`` and ``summary.json``.

For each submission, the steps and where they live:

1. read and run it: :mod:`.runner` (in a child process, :mod:`.child`, limited and
   isolated by :mod:`.sandbox`, which also parses the notebook and turns it into
   Python), which brings back each probe's raw output;
2. judge it: :mod:`.verdict` compares each output with the test's reference and
   names the submission's status; :func:`.report.fit` bounds what is kept;
3. write it down: :mod:`.report` (feedback as JSON and as a page, :mod:`.feedback_html`,
   then the record, each atomically).

All three run under one guard per submission: any exception in them (a bug in
the grader, a Dask worker that died on it) becomes that submission's ``grader_error``
status, with a one-line reason in its feedback (the step and the exception's type) and
in the gradebook (with the exception's message), and the batch goes on,
here or on Dask. Two things stop the batch, because they would fail every later
submission too: :class:`~coursekit.grading.sandbox.SandboxError` (this machine cannot
run submissions safely) and :class:`~coursekit.grading.report.OutputError` (the output
folder is full or read-only: the error names the path). Either way the records written
so far are kept, and no gradebook is written short: the one of an earlier run, if any,
stays as it was.

Beside the records, each run brings the grading store (``grades.sqlite``,
:mod:`.store`) up to date: each submission's autograded scores, when it was handed in,
and the hash of each written answer. The store is where people's grades live
(``coursekit review``); the run never changes them, and folds them, with the late policy
(:mod:`.late`), into the gradebook and each student's feedback (:mod:`.byhand`). So
running ``coursekit grade`` again after reviewing (every record reused: seconds) writes
the gradebook and feedback with the people's grades in them. A store that cannot be
opened (locked by another program past its timeout, not a database, not writable)
stops the run before anything is graded, naming the path and the cause.

The output folder is made private to the grader (mode 0700) and locked while a
run writes to it. A record whose fingerprint (notebook, tests, limits) still
matches is kept, so a run that was killed grades only what is missing;
``force=True`` grades everything again. Every comparison happens in this
process, on values rebuilt from plain data, so nothing a submission patches in
its own process can change a verdict.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from coursekit.grading import answers, late
from coursekit.grading.byhand import ByHand, collect, policy_for
from coursekit.grading.child import MAX_NOTEBOOK_BYTES, clip
from coursekit.grading.feedback_html import render
from coursekit.grading.report import (
    OutputError,
    exclusive,
    feedback,
    fingerprint,
    fit,
    gradebook,
    record,
    reuse,
    summary,
    to_json,
    write_atomic,
    writing,
)
from coursekit.grading.runner import read_notebook, run_submission
from coursekit.grading.sandbox import Limits, SandboxError
from coursekit.grading.spec import Plan, build_plan, load_assignment, plan_to_json
from coursekit.grading.store import Store, SubmissionRow, store_name
from coursekit.grading.verdict import SubmissionResult, judge, run_status
from coursekit.grading.zygote import PRELOAD

__all__ = [
    "DEFAULT_CELL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "grade",
    "grade_notebook",
]

DEFAULT_TIMEOUT = 600.0
DEFAULT_CELL_TIMEOUT = 120.0
DASK_CONNECT_TIMEOUT = "20s"
MAX_REASON = 300


@dataclass(frozen=True)
class _Options:
    """How submissions are run (the same for every submission of a batch)."""

    timeout: float = DEFAULT_TIMEOUT
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    limits: Limits = field(default_factory=Limits)
    isolate: bool = True
    hide: tuple[str, ...] = ()
    cwd: str | None = None
    preload: tuple[str, ...] | None = None  # warm starts; no effect on any result

    def identity(self) -> dict:
        """What, besides the notebook and the tests, can change a result."""
        return {"timeout": self.timeout, "cell_timeout": self.cell_timeout,
                "limits": asdict(self.limits), "isolate": self.isolate}


def _unrunnable(name: str, plan: Plan, status: str, detail: str,
                note: str = "") -> SubmissionResult:
    """A submission that never ran: ``status`` and ``detail`` say why, and no test passed."""
    return SubmissionResult(name, status, detail,
                            tuple(judge(t, None, detail) for t in plan.tests), note=note)


def _grader_error(name: str, plan: Plan, doing: str, exc: BaseException) -> SubmissionResult:
    """A submission on which the grader failed while ``doing`` something: scores 0. The
    detail (feedback) names the step and the exception's type; its message, which could
    quote a hidden input, goes to the note (record and gradebook), on one line."""
    try:
        message = " ".join(str(exc).split())
    except Exception:  # an exception that cannot even print itself
        message = ""
    return _unrunnable(name, plan, "grader_error",
                       f"the grader failed while {doing} ({type(exc).__name__})",
                       clip(message, MAX_REASON))


def _grade_bytes(data: bytes, name: str, plan: Plan, options: _Options) -> SubmissionResult:
    """Grade one notebook given as bytes (what :func:`grade` runs, locally or on Dask).

    Never raises but :class:`SandboxError`: whatever else goes wrong is this
    submission's ``grader_error``.
    """
    doing = "running it"
    try:
        if len(data) > MAX_NOTEBOOK_BYTES:
            return _unrunnable(name, plan, "invalid",
                               f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB")
        run = run_submission(data, plan, timeout=options.timeout,
                             cell_timeout=options.cell_timeout, cwd=options.cwd,
                             limits=options.limits, isolate=options.isolate, hide=options.hide,
                             preload=options.preload)
        doing = "judging it"
        status, detail, not_run = run_status(run, options.timeout, options.limits)
        tests = tuple(judge(t, run, not_run) for t in plan.tests)
        return fit(SubmissionResult(name, status, detail, tests, run.cell_problems,
                                    isolation=run.isolation), plan)
    except SandboxError:
        raise
    except Exception as exc:
        return _grader_error(name, plan, doing, exc)


def _read(path: Path) -> bytes | OSError:
    """The notebook's bytes (:func:`read_notebook`), or why it cannot be read."""
    try:
        return read_notebook(path)
    except OSError as exc:
        return exc


def _grade_path(name: str, path: Path, plan: Plan,
                options: _Options) -> tuple[SubmissionResult, bytes]:
    """Read and grade one notebook: its result and the bytes that were graded."""
    data = _read(path)
    if isinstance(data, OSError):
        return _unrunnable(name, plan, "invalid", clip(f"cannot be read: {data}")), b""
    return _grade_bytes(data, name, plan, options), data


def grade_notebook(path: str | Path, plan: Plan, *, name: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT, cell_timeout: float = DEFAULT_CELL_TIMEOUT,
                   cwd: str | Path | None = None, limits: Limits | None = None,
                   isolate: bool = True, hide: Sequence[str | Path] = ()) -> SubmissionResult:
    """Run one notebook in its own process and grade it against ``plan``.

    Never raises for a broken notebook: the result's ``status`` and ``detail``
    say what happened, and every test gets a verdict. ``limits``, ``isolate``
    and ``hide`` are those of :func:`coursekit.grading.runner.run_submission`.

    Raises
    ------
    SandboxError
        If the process for the notebook could not be set up.
    """
    path = Path(path)
    options = _Options(timeout, cell_timeout, Limits() if limits is None else limits, isolate,
                       tuple(str(p) for p in hide), None if cwd is None else str(cwd))
    return _grade_path(name or path.stem, path, plan, options)[0]


def _submissions(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for path in folder.rglob("*.ipynb"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .ipynb_checkpoints and other hidden folders
        found.append((relative.with_suffix("").as_posix(), path))
    return sorted(found)


def _secret_paths(grading: Path, submissions: Path, out: Path,
                  extra: Sequence[str | Path]) -> tuple[str, ...]:
    """What submissions must not see: the grading file's folder and the repository's
    ``.git`` above it, the submissions (each other's), the results, and ``extra``."""
    folder = grading.resolve().parent
    paths = [folder, submissions, out, *extra]
    paths += [p / ".git" for p in (folder, *folder.parents) if (p / ".git").exists()][:1]
    return tuple(sorted({str(Path(p).resolve()) for p in paths}))


def grade(assignment: str | Path, submissions: str | Path, out: str | Path, *,
          workers: int = 1, timeout: float = DEFAULT_TIMEOUT,
          cell_timeout: float = DEFAULT_CELL_TIMEOUT, seed: int | None = None,
          progress: bool = True,
          on_result: Callable[[SubmissionResult], None] | None = None,
          limits: Limits | None = None, force: bool = False, dask: str | None = None,
          hide: Sequence[str | Path] = (),
          preload: Sequence[str] | None = PRELOAD, deadline: str | None = None,
          times: str | Path | None = None) -> list[SubmissionResult]:
    """Grade every notebook under ``submissions`` and write the results to ``out``.

    Parameters
    ----------
    assignment : path
        The assignment's grading file, ``solutions/<hw>_grading.py``.
    submissions : path
        A folder of ``.ipynb`` files, searched recursively (hidden folders such as
        ``.ipynb_checkpoints`` skipped). A submission is named by its path in the
        folder without ``.ipynb``: ``alice.ipynb`` is ``alice``, ``bob/hw1.ipynb``
        is ``bob/hw1``.
    out : path
        Where ``results/``, ``feedback/``, ``gradebook.csv`` and ``summary.json`` go
        (created, and made private to the grader).
    workers : int
        Submissions graded at once on this machine, each in its own process.
    timeout, cell_timeout : float
        Wall-clock seconds per submission and per cell (or graded call).
    seed : int, optional
        Secret seed for hidden inputs, overriding the grading file's.
    progress : bool
        Show a progress bar on stderr.
    on_result : callable, optional
        Called in the calling thread with each result as it completes (results
        kept from an earlier run first).
    limits : Limits, optional
        Memory, CPU time, processes, file size and scratch space per submission.
    force : bool
        Grade every submission again, even those an earlier run recorded.
    dask : str, optional
        Address of a Dask scheduler (``tcp://host:8786``): grade there instead
        of here; ``workers`` is then unused. Workers need coursekit installed.
    hide : paths
        More paths submissions must not see, besides the grading file's folder,
        the repository's ``.git``, ``submissions`` and ``out``.
    preload : sequence of str, optional
        Modules a zygote imports once, so that each submission's process is forked
        with them loaded instead of importing them again (:mod:`.zygote`; each
        process is still fresh and set up as in a cold start). None starts every
        submission cold. No result depends on it.
    deadline : str, optional
        ISO 8601 with its offset (``"2026-10-02T23:59+02:00"``); overrides the grading
        file's. With a deadline the gradebook gets late columns and the grading file's
        ``late`` policy applies (none: lateness is shown, nothing deducted).
    times : path, optional
        A CSV of submission times, as an LMS exports it (:func:`.late.submission_times`);
        by default a notebook's modification time is its submission time.

    Returns
    -------
    list of SubmissionResult
        Sorted by submission name.

    Raises
    ------
    SandboxError
        If submissions cannot be run safely here (nothing is recorded for the
        submission that found it; the records of the others are kept).
    StoreError
        If the grading store cannot be opened or written (the message names the path and
        the cause); raised before any grading, or, later, with the records kept.
    OutputError
        If ``out`` takes no more writes (full, read-only, not permitted): the message
        names the path. The records written before are kept whole; ``gradebook.csv`` and
        ``summary.json`` are not written (an earlier run's stay as they were), so make
        room and run again to grade the rest. Anything else that goes wrong while
        grading one submission is its ``grader_error``.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    for arg, value in (("timeout", timeout), ("cell_timeout", cell_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{arg} must be a positive number of seconds, got {value!r}")
    if limits is not None and not isinstance(limits, Limits):
        raise ValueError(f"limits must be a Limits, got {limits!r}")
    if preload is not None and (isinstance(preload, str)
                                or not all(isinstance(m, str) and m for m in preload)):
        raise ValueError(f"preload must be a sequence of module names or None, got {preload!r}")
    folder = Path(submissions)
    if not folder.is_dir():
        raise ValueError(f"submissions must be a folder, got {str(folder)!r}")
    spec = load_assignment(assignment)
    plan = build_plan(spec, seed=seed)
    plan_json = plan_to_json(plan)
    policy = policy_for(deadline if deadline is not None else spec.deadline, spec.late)
    out = Path(out)
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        os.chmod(out, 0o700)
    options = _Options(float(timeout), float(cell_timeout),
                       Limits() if limits is None else limits,
                       hide=_secret_paths(Path(assignment), folder, out, hide),
                       preload=None if preload is None else tuple(preload))
    from tqdm.auto import tqdm  # here: a notebook importing check need not load it

    with exclusive(out), Store.open(out, create=True) as store:
        store.set_meta("assignment", plan.assignment)
        store.set_meta("grading_file", str(Path(assignment).resolve()))
        store.set_meta("submissions_folder", str(folder.resolve()))
        for partial in out.rglob(".*.partial"):  # left by a run that was killed
            with writing(partial):
                partial.unlink()
        found = _submissions(folder)
        paths = dict(found)
        keys = _store_names(list(paths))
        handed_in = late.submission_times(paths, times)
        for problem in _time_problems(handed_in, times):
            print(f"coursekit grade: {problem}", file=sys.stderr)
        by_hand: dict[str, ByHand] = {}
        reused, todo = [], []
        for name, path in found:
            data = None if force else _read(path)
            kept = None if data is None or isinstance(data, OSError) else reuse(
                out / "results" / f"{name}.json", name,
                fingerprint(plan_json, data, options.identity()), plan)
            if kept is None:
                todo.append((name, path))
            else:
                reused.append((kept, path))

        def remember(result: SubmissionResult, data: bytes, path: Path) -> ByHand:
            """Bring the store up to date on ``result``; what people added to it."""
            when = handed_in.times.get(result.name)
            key = keys[result.name]
            store.sync_submission(SubmissionRow(
                key, store_name(str(path.resolve())), hashlib.sha256(data).hexdigest(),
                when[0].isoformat(timespec="seconds") if when else None,
                when[1] if when else None, result.status, store_name(result.detail),
                {qid: result.score(qid) for qid, _ in plan.questions}, _graded_at(result)),
                {key: (a.sha256, len(a.text), a.present)
                 for key, a in answers.read(data, plan.written).items()})
            by_hand[result.name] = collect(store, plan, key, policy, when)
            return by_hand[result.name]

        def write(result: SubmissionResult, data: bytes) -> None:
            report = feedback(result, plan, by_hand.get(result.name))
            for suffix, make in ((".json", to_json), (".html", lambda r: render(r, data or None))):
                text = make(report)  # the JSON first: written even if the page fails
                where = out / "feedback" / f"{result.name}{suffix}"
                if not where.is_file() or where.read_text(encoding="utf-8",
                                                          errors="replace") != text:
                    write_atomic(where, text)
            if not result.reused:  # the record last: it says the submission is done
                stamp = fingerprint(plan_json, data, options.identity())
                write_atomic(out / "results" / f"{result.name}.json",
                             to_json(record(result, stamp)))

        def finish(result: SubmissionResult, data: bytes) -> SubmissionResult:
            remember(result, data, paths[result.name])
            try:
                write(result, data)
            except OutputError:
                raise  # full or read-only: every later write would fail too
            except Exception as exc:  # rendering its page, say: its grader_error
                result = _grader_error(result.name, plan, "writing its feedback", exc)
                try:
                    write(result, data)
                except OutputError:
                    raise
                except Exception:  # its page again, say: the gradebook says it
                    pass
            if on_result is not None:
                on_result(result)
            bar.update()
            return result

        with tqdm(total=len(reused) + len(todo), desc=f"grading {plan.assignment}",
                  unit="notebook", disable=not progress, file=sys.stderr) as bar:
            results = []
            for result, path in reused:  # read again for its page, one at a time
                data = _read(path)
                results.append(finish(result, data if isinstance(data, bytes) else b""))
            if dask is None:
                results += _run_here(todo, plan, options, finish, workers)
            else:
                results += _run_on_dask(todo, plan, options, finish, dask)
        results.sort(key=lambda r: r.name)
        write_atomic(out / "gradebook.csv",
                     gradebook(results, plan, by_hand, late=policy is not None))
        write_atomic(out / "summary.json", to_json(summary(results, plan)))
    return results


def _store_names(names: list[str]) -> dict[str, str]:
    """Each submission's name in the store (:func:`.store.store_name`); two that would
    share one (a file name with undecodable bytes beside one spelling them out as ``\\xNN``)
    stop the run before anything is graded, naming both."""
    keys, owners = {}, {}
    for name in names:
        key = keys[name] = store_name(name)
        twin = owners.setdefault(key, name)
        if twin != name:
            raise ValueError(f"the submissions {twin!r} and {name!r} would share the name "
                             f"{key!r} in the grading store: rename one of the files")
    return keys


def _graded_at(result: SubmissionResult) -> str:
    """When ``result`` was graded: now, or for a record reused, left as the store has it."""
    if result.reused:
        return ""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _time_problems(handed_in: late.SubmissionTimes, times: str | Path | None) -> list[str]:
    """What a CSV of submission times did not match, one line each."""
    problems = [f"{times}: no time for the submission {name} (no late penalty computed)"
                for name in handed_in.missing]
    problems += [f"{times}, line {line}: {name!r} is no submission in the folder"
                 for name, line in handed_in.unknown]
    return problems


def _run_here(todo: list[tuple[str, Path]], plan: Plan, options: _Options,
              finish: Callable[[SubmissionResult, bytes], SubmissionResult],
              workers: int) -> list[SubmissionResult]:
    """Grade in ``workers`` threads, each waiting on one submission's process at a time."""
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_grade_path, name, path, plan, options) for name, path in todo]
        try:
            for future in as_completed(futures):
                results.append(finish(*future.result()))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def _run_on_dask(todo: list[tuple[str, Path]], plan: Plan, options: _Options,
                 finish: Callable[[SubmissionResult, bytes], SubmissionResult],
                 address: str) -> list[SubmissionResult]:
    """Grade on the Dask cluster at ``address``, a bounded number of notebooks in flight."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as exc:
        raise ValueError("grading on a Dask cluster needs dask.distributed: "
                         "pip install 'coursekit[cluster]'") from exc
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except OSError as exc:
        raise ValueError(f"could not reach the Dask scheduler at {address}: {exc}") from None
    results = []
    with client:
        # The plan travels with each task (tens of KB), not scattered once: a scattered
        # plan is a dependency the scheduler can lose with a killed worker, and then every
        # later task is cancelled ("lost dependencies") and the rest of the batch with it.
        in_flight = {}
        queue = iter(todo)

        def submit() -> Any:
            while (job := next(queue, None)) is not None:
                data = _read(job[1])
                if not isinstance(data, OSError):
                    future = client.submit(_grade_bytes, data, job[0], plan, options,
                                           pure=False)
                    in_flight[future] = (job[0], data)
                    return future
                results.append(finish(_unrunnable(job[0], plan, "invalid",
                                                  clip(f"cannot be read: {data}")), b""))
            return None

        window = max(2 * sum(client.nthreads().values()), 1)
        started = [f for f in (submit() for _ in range(window)) if f is not None]
        completed = dask_completed(started)
        for future in completed:
            name, data = in_flight.pop(future)
            try:
                result = future.result()
            except SandboxError:
                raise
            except Exception as exc:  # e.g. the worker died on it again and again
                result = _grader_error(name, plan, "grading it on a Dask worker", exc)
            results.append(finish(result, data))
            following = submit()
            if following is not None:
                completed.add(following)
    return results
