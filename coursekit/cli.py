"""The ``coursekit`` command: release homework, check a notebook, grade a folder, make slides,
write the launch links, build the website.

::

    coursekit release solutions/ homework/
    coursekit check hw1.ipynb [--checks RELEASED.ipynb] [--html REPORT.html]
    coursekit grade hw1 submissions/ --out grades/ [--workers N | --dask ADDRESS]
                    [--timeout S] [--cell-timeout S] [--cpu-time S] [--memory MB]
                    [--hide PATH]... [--force] [--seed N] [--solutions DIR]
    coursekit slides lectures/ --out _build/slides [--execute]
    coursekit launch [NOTEBOOK or FOLDER ...] [--check]
    coursekit site [--out _build/site] [--executed _build/executed] [--full]
    coursekit export --lms canvas|moodle GRADEBOOK ROSTER [--assignment NAME] [--out FILE]
    coursekit import-nbgrader SOURCE.ipynb [--out DIR] [--assignment NAME] [--force]
    coursekit export-nbgrader SOLUTION.ipynb [GRADING_FILE] [--out DIR] [--force]

Exit status: 0 on success (``check``: every public test passed), 1 when
``check`` finds failing tests, ``launch --check`` stale notebooks, ``site`` a
problem that fails the build, ``export`` students or submissions it could not
match or ``import-nbgrader``/``export-nbgrader`` a notebook that breaks nbgrader's
rules (or a file it would overwrite), 2 on bad arguments or unusable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from coursekit.grading.authoring import MarkerError, release
from coursekit.grading.grader import DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT, grade
from coursekit.grading.report import OutputError, write_atomic
from coursekit.grading.sandbox import Limits, SandboxError
from coursekit.grading.selfcheck import check_notebook
from coursekit.grading.spec import GradingSpecError
from coursekit.grading.store import StoreError
from coursekit.grading.verdict import STATUSES, SubmissionResult
from coursekit.grading.zygote import PRELOAD

__all__ = ["main"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coursekit",
        description="Release, check and grade coursekit assignments; export slides; write "
                    "launch links; build the course website; export grades to an LMS.")
    commands = parser.add_subparsers(dest="command", required=True)

    rel = commands.add_parser(
        "release", help="write student notebooks from solution notebooks",
        description="Strip solution regions, drop hidden tests and outputs, and write each "
                    "solutions/<hw>.ipynb to homework/ with its public checks inside it "
                    "(in its metadata, with their hash).")
    rel.add_argument("solutions", type=Path, help="folder of solution notebooks")
    rel.add_argument("homework", type=Path, help="folder to write student notebooks to")

    chk = commands.add_parser(
        "check", help="run a notebook's public tests",
        description="Run the saved notebook as the grader will, then the public tests "
                    "the release put inside it. Works on the notebook alone, wherever it is "
                    "and whatever its name.")
    chk.add_argument("notebook", type=Path, help="the notebook to check")
    chk.add_argument("--checks", type=Path, metavar="RELEASED.ipynb",
                     help="take the public tests from this released notebook instead (for a "
                          "notebook that lost its metadata, or whose embedded tests were "
                          "edited)")
    chk.add_argument("--html", type=Path, metavar="REPORT.html",
                     help="also write the report as the page the grader writes for each "
                          "submission (public tests only), with the notebook's cells")
    _add_timeouts(chk)

    grd = commands.add_parser(
        "grade", help="grade a folder of submitted notebooks",
        description="Grade every .ipynb under SUBMISSIONS, each in its own limited process "
                    "(as root: an unprivileged user, no network, solutions out of sight), "
                    "and write results/, feedback/, gradebook.csv and summary.json to --out. "
                    "Run it again after an interruption: it grades only what is missing.")
    grd.add_argument("assignment", help="assignment name (looked up as "
                     "SOLUTIONS/<name>_grading.py) or the path of its grading file")
    grd.add_argument("submissions", type=Path, help="folder of submitted notebooks")
    grd.add_argument("--out", type=Path, required=True, help="folder for the results")
    grd.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                     help="submissions graded at once (default: the number of CPUs)")
    grd.add_argument("--dask", metavar="ADDRESS", help="grade on the Dask cluster whose "
                     "scheduler is at ADDRESS (tcp://host:8786) instead of here")
    grd.add_argument("--force", action="store_true", help="grade every submission again, "
                     "even those an interrupted or earlier run already recorded in --out")
    grd.add_argument("--memory", type=_positive_int, default=Limits.memory_mb, metavar="MB",
                     help="address space per submission in MiB, beyond the modules loaded "
                          f"before its first cell (default {Limits.memory_mb}; importing "
                          "torch maps ~3 GiB)")
    grd.add_argument("--cpu-time", type=_seconds, metavar="S",
                     help="CPU seconds per submission (default: --timeout)")
    grd.add_argument("--hide", type=Path, action="append", default=[], metavar="PATH",
                     help="a path submissions must not see, besides the solutions folder, "
                          "its .git, the submissions and --out (repeatable)")
    grd.add_argument("--seed", type=_seed, help="secret seed for hidden inputs "
                     "(default: the grading file's)")
    grd.add_argument("--solutions", type=Path, default=Path("solutions"),
                     help="folder of the grading files (default: solutions)")
    grd.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    grd.add_argument("--cold", action="store_true", help="start every submission's process "
                     "cold (python child.py) instead of forking it from a zygote that has "
                     "imported numpy, torch, matplotlib and pandas once; results are the same")
    grd.add_argument("--deadline", metavar="WHEN", help="the deadline, ISO 8601 with its "
                     "offset (2026-10-02T23:59+02:00), overriding the grading file's: adds "
                     "late columns to the gradebook and applies the grading file's late policy")
    grd.add_argument("--times", type=Path, metavar="CSV", help="submission times as an LMS "
                     "exports them (a name and a time column); default: each notebook's "
                     "modification time")
    _add_timeouts(grd)

    rev = commands.add_parser(
        "review", help="grade written answers by hand, in a page served on this machine",
        description="Serve the grading page for the written answers of a graded assignment "
                    "on 127.0.0.1, protected by a random token in its URL: every submission's "
                    "answers with their rubric, keyboard-driven. Grades go into "
                    "OUT/grades.sqlite; run `coursekit grade` again to put them into the "
                    "gradebook and the feedback.")
    rev.add_argument("assignment", help="assignment name (looked up as "
                     "SOLUTIONS/<name>_grading.py) or the path of its grading file")
    rev.add_argument("--out", type=Path, required=True,
                     help="the folder `coursekit grade` wrote (holds grades.sqlite)")
    rev.add_argument("--solutions", type=Path, default=Path("solutions"),
                     help="folder of the grading files (default: solutions)")
    rev.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    rev.add_argument("--grader", help="your name in the grades and the log (default: your "
                     "login name); changeable in the page")
    rev.add_argument("--open", action="store_true", help="open the page in a browser")

    ovr = commands.add_parser(
        "override", help="give a student an extension, or excuse them",
        description="Record a per-student override in OUT/grades.sqlite (logged with who and "
                    "when); without STUDENT, list the overrides. Run `coursekit grade` again "
                    "to apply it to the gradebook.")
    ovr.add_argument("out", type=Path, help="the folder `coursekit grade` wrote")
    ovr.add_argument("student", nargs="?", help="the submission's name (its notebook's file "
                     "name without .ipynb)")
    ovr.add_argument("--extension", metavar="DURATION",
                     help="time added to the deadline for this student: 48h, 2d, 90min")
    excuse = ovr.add_mutually_exclusive_group()
    excuse.add_argument("--excused", action="store_true", default=None,
                        help="excused from this assignment (no grade counted)")
    excuse.add_argument("--not-excused", dest="excused", action="store_false")
    ovr.add_argument("--note", default="", help="why, for the log")
    ovr.add_argument("--who", help="your name in the log (default: your login name)")

    sld = commands.add_parser(
        "slides", help="export notebooks as reveal.js slides",
        description="Write <out>/<name>.slides.html for every notebook given (or every "
                    ".ipynb in a folder given): one slide per # or ## heading, the cells "
                    "after it as fragments and sub-slides. The notebooks are not changed.")
    sld.add_argument("notebooks", type=Path, nargs="+", help="notebooks or folders of notebooks")
    sld.add_argument("--out", type=Path, default=Path("_build/slides"),
                     help="folder for the HTML (default: _build/slides)")
    sld.add_argument("--execute", action="store_true", help="run a copy of each notebook "
                     "first, so that the slides show its figures and tables")
    sld.add_argument("--cell-timeout", type=_seconds, default=600.0,
                     help="seconds per cell with --execute (default 600)")
    sld.add_argument("--reveal-prefix", metavar="URL", help="where the slides load reveal.js "
                     "from (default: a CDN; a local copy works offline)")

    lch = commands.add_parser(
        "launch", help="write the launch links and the setup cell into notebooks",
        description="Give each notebook (every .ipynb under a folder given; by default "
                    "lectures/ and solutions/ of the repository) its first cell of Colab, "
                    "Binder and JupyterHub links to its own path, and its first code cell, "
                    "which installs coursekit where it is missing and prints the mode and "
                    "device, from [tool.coursekit.launch] in pyproject.toml. homework/ gets "
                    "them from `coursekit release`.")
    lch.add_argument("notebooks", type=Path, nargs="*",
                     help="notebooks or folders (default: lectures/ and solutions/)")
    lch.add_argument("--check", action="store_true", help="change nothing; list the notebooks "
                     "whose cells are missing or out of date and exit 1 if there are any")

    ste = commands.add_parser(
        "site", help="build the course website into _build/site/html",
        description="Build the course website (Sphinx + myst-nb; docs/site.md): the README's "
                    "course map, every lecture with its outputs, the homework as released, "
                    "the instructors' pages and the API reference. Lectures are executed in "
                    "CI mode unless a fresh executed copy is found in --executed (the test "
                    "suite writes them); warnings fail the build.")
    ste.add_argument("--out", type=Path, default=Path("_build/site"),
                     help="output folder; the site is <out>/html (default: _build/site)")
    ste.add_argument("--executed", type=Path, default=Path("_build/executed"),
                     help="executed notebooks to reuse, and where new ones are kept "
                          "(default: _build/executed)")
    ste.add_argument("--full", action="store_true", help="execute the lectures at full size "
                     "(COURSEKIT_FAST unset) instead of in CI mode")
    ste.add_argument("--cell-timeout", type=_seconds, default=300,
                     help="seconds per cell when a lecture is executed (default 300)")

    exp = commands.add_parser(
        "export", help="write a gradebook as the CSV that Canvas or Moodle imports",
        description="Join gradebook.csv (from coursekit grade) with a roster (Canvas: its own "
                    "gradebook export; Moodle: a CSV with 'Email address' or 'ID number') and "
                    "write the LMS's import file. A submission matches the student whose login, "
                    "SIS user ID, email or email name equals its name (docs/grading.md); "
                    "unmatched students and submissions are listed, and the exit status is 1.")
    exp.add_argument("--lms", required=True, choices=("canvas", "moodle"))
    exp.add_argument("gradebook", type=Path, help="gradebook.csv written by coursekit grade")
    exp.add_argument("roster", type=Path, help="the class roster as CSV")
    exp.add_argument("--assignment", help="the grade column's name in the LMS (default: the "
                     "assignment named in summary.json beside the gradebook)")
    exp.add_argument("--out", type=Path, help="where to write (default: <lms>_import.csv "
                     "beside the gradebook)")
    exp.add_argument("--percent", action="store_true", help="export percentages of the "
                     "maximum (the gradebook's points-possible row, or --max-points) instead of "
                     "points")
    exp.add_argument("--max-points", type=float, help="the assignment's maximum (default: "
                     "the gradebook's points-possible row: tests and written answers)")
    exp.add_argument("--identifier", choices=("email", "id"), default="email",
                     help="Moodle's user column: 'Email address' (default) or 'ID number'")

    imp = commands.add_parser(
        "import-nbgrader", help="turn an nbgrader source notebook into a coursekit assignment",
        description="Write OUT/<name>.ipynb (the solution notebook: nbgrader's solution "
                    "markers, written answers between <!-- BEGIN/END ANSWER -->, test cells "
                    "removed) and OUT/<name>_grading.py (one question per autograder test "
                    "cell, its points carried over, hidden tests as hidden tests). Cells "
                    "graded by people are listed. See docs/grading.md, 'Coming from nbgrader'.")
    imp.add_argument("source", type=Path, help="the nbgrader source notebook")
    imp.add_argument("--out", type=Path, default=Path("solutions"),
                     help="folder to write to (default: solutions)")
    imp.add_argument("--assignment", help="the assignment's name (default: the notebook's)")
    imp.add_argument("--force", action="store_true", help="overwrite existing files")

    enb = commands.add_parser(
        "export-nbgrader", help="write a coursekit assignment as an nbgrader source notebook",
        description="Write OUT/<name>.ipynb with nbgrader's cell metadata: solution cells, "
                    "written answers as manually graded answers, and per question a locked "
                    "autograder tests cell of asserts (hidden tests in ### BEGIN HIDDEN "
                    "TESTS). A notebook imported from nbgrader gets its own cells back.")
    enb.add_argument("solution", type=Path, help="the coursekit solution notebook")
    enb.add_argument("grading", type=Path, nargs="?",
                     help="its grading file (default: <name>_grading.py beside it)")
    enb.add_argument("--out", type=Path, help="folder to write to (default: source/<name>, "
                     "nbgrader's layout)")
    enb.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def _add_timeouts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                        help=f"seconds per notebook (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--cell-timeout", type=_seconds, default=DEFAULT_CELL_TIMEOUT,
                        help=f"seconds per cell (default {DEFAULT_CELL_TIMEOUT:g})")


def _grading_file(assignment: str, solutions: Path) -> Path:
    path = Path(assignment)
    if path.name.endswith("_grading.py"):
        return path
    if path.suffix == ".ipynb":
        return path.with_name(f"{path.stem}_grading.py")
    return solutions / f"{assignment}_grading.py"


def _release(args: argparse.Namespace) -> int:
    written = release(args.solutions, args.homework)
    for path in written:
        print(f"wrote {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    report = check_notebook(args.notebook, checks=args.checks, timeout=args.timeout,
                            cell_timeout=args.cell_timeout)
    print(report)
    if args.html is not None:
        write_atomic(args.html, report.html(args.notebook))
        print(f"wrote {args.html}")
    return 0 if report.passed else 1


def _slides(args: argparse.Namespace) -> int:
    from coursekit.slides import build as build_slides  # not needed to check or grade

    for path in build_slides(args.notebooks, args.out, execute=args.execute,
                             timeout=args.cell_timeout, reveal_prefix=args.reveal_prefix):
        print(f"wrote {path}")
    return 0


def _launch(args: argparse.Namespace) -> int:
    from coursekit import launch  # not needed to check or grade

    paths = args.notebooks
    if not paths:
        root = launch.find_root()
        paths = [Path(os.path.relpath(root / folder)) for folder in ("lectures", "solutions")
                 if (root / folder).is_dir()]
    if args.check:
        stale = launch.stale(paths)
        for path in stale:
            print(f"out of date: {path}")
        if stale:
            print("run `coursekit launch` to write their launch and setup cells", file=sys.stderr)
        return 1 if stale else 0
    for path in launch.write(paths):
        print(f"wrote {path}")
    return 0


def _site(args: argparse.Namespace) -> int:
    from coursekit import launch, site  # not needed to check or grade

    root = launch.find_root()
    try:
        site.build(root, out=args.out.resolve(), cache=args.executed.resolve(),
                   mode="full" if args.full else "ci", timeout=args.cell_timeout)
    except site.SiteBuildError as error:
        print(f"coursekit site: the build failed: {error}", file=sys.stderr)
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    from coursekit.grading import lms

    summary_path = args.gradebook.parent / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    assignment = args.assignment or summary.get("assignment")
    if not assignment:
        raise ValueError("no --assignment given and no summary.json beside the gradebook")
    max_points = args.max_points  # None: the gradebook's points-possible row (written too)
    out = args.out or args.gradebook.parent / f"{args.lms}_import.csv"
    result = lms.export_files(args.gradebook, args.roster, out, args.lms, assignment,
                              percent=args.percent, max_points=max_points,
                              identifier=args.identifier)
    print(result.report())
    print(f"wrote {out}")
    return 0 if result.complete else 1


def _import_nbgrader(args: argparse.Namespace) -> int:
    from coursekit.grading import nbgrader

    try:
        result = nbgrader.import_nbgrader(args.source, args.out, args.assignment,
                                          force=args.force)
    except nbgrader.NbgraderError as exc:
        print(f"coursekit import-nbgrader: {exc}", file=sys.stderr)
        return 1
    print(result.report())
    return 0


def _export_nbgrader(args: argparse.Namespace) -> int:
    from coursekit.grading import nbgrader

    try:
        path = nbgrader.export_nbgrader(args.solution, args.grading, args.out, force=args.force)
    except nbgrader.NbgraderError as exc:
        print(f"coursekit export-nbgrader: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "grader"


def _review(args: argparse.Namespace) -> int:
    from coursekit.grading import review

    grading = _grading_file(args.assignment, args.solutions)
    if not grading.is_file():
        raise GradingSpecError(f"no grading file for {args.assignment!r}: looked for {grading}")
    server = review.serve(grading, args.out, port=args.port, grader=args.grader or _login(),
                          open_browser=args.open)
    print(f"grading page for {grading.name.removesuffix('_grading.py')}: {server.url}\n"
          "(Ctrl+C stops it; then run `coursekit grade` again to fold the grades into the "
          "gradebook and the feedback)", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _override(args: argparse.Namespace) -> int:
    from coursekit.grading.late import parse_duration
    from coursekit.grading.store import Store

    with Store.open(args.out) as store:
        if args.student is None:
            for student, o in sorted(store.overrides().items()):
                print(f"{student}: extension {o.extension_hours:g} h, "
                      f"{'excused' if o.excused else 'not excused'}"
                      f"{f' ({o.note})' if o.note else ''}; by {o.who} at {o.at}")
            return 0
        if args.extension is None and args.excused is None:
            raise ValueError("give --extension, --excused or --not-excused (or no student, "
                             "to list the overrides)")
        hours = (None if args.extension is None
                 else parse_duration(args.extension).total_seconds() / 3600)
        o = store.set_override(args.student, extension_hours=hours, excused=args.excused,
                               note=args.note, who=args.who or _login())
        print(f"{args.student}: extension {o.extension_hours:g} h, "
              f"{'excused' if o.excused else 'not excused'}; run `coursekit grade` again to "
              "apply it")
    return 0


def _grade(args: argparse.Namespace) -> int:
    grading = _grading_file(args.assignment, args.solutions)
    if not grading.is_file():
        raise GradingSpecError(f"no grading file for {args.assignment!r}: looked for {grading}")
    start = time.perf_counter()
    limits = Limits(memory_mb=args.memory, cpu_seconds=args.cpu_time)
    results = grade(grading, args.submissions, args.out, workers=args.workers,
                    timeout=args.timeout, cell_timeout=args.cell_timeout, seed=args.seed,
                    progress=not args.no_progress, limits=limits, force=args.force,
                    dask=args.dask, hide=args.hide, preload=None if args.cold else PRELOAD,
                    deadline=args.deadline, times=args.times)
    elapsed = time.perf_counter() - start
    counts = ", ".join(f"{n} {status}" for status in STATUSES
                       if (n := sum(r.status == status for r in results)))
    kept = sum(r.reused for r in results)
    graded = f"graded {len(results) - kept} submissions"
    if kept:
        graded += f" and kept {kept} recorded by an earlier run (--force grades them again)"
    print(f"{graded} in {elapsed:.1f} s ({counts or 'none'})")
    print(f"wrote {args.out / 'gradebook.csv'}, {args.out / 'feedback'}/, "
          f"{args.out / 'summary.json'}, {args.out / 'grades.sqlite'}")
    failed = [r.name for r in results if r.status == "grader_error"]
    if failed:
        print(f"warning: the grader itself failed on {len(failed)} submission"
              f"{'s' * (len(failed) != 1)} ({', '.join(failed[:5])}{', ...' * (len(failed) > 5)}"
              "): status grader_error, the reason in gradebook.csv; the next run grades them "
              "again", file=sys.stderr)
    isolation = _isolation(results)
    if isolation:
        print(isolation, file=sys.stderr)
    return 0


def _isolation(results: list[SubmissionResult]) -> str:
    """Notes on how the submissions that ran were isolated, when weaker than it can be."""
    report = next((r.isolation for r in results if r.isolation), None)
    if report is None:
        return ""
    notes = []
    if report["user"] == "grader":
        notes.append("note: not root, so student code ran as your user, with resource limits "
                     "only: it could read your files and use the network (see docs/grading.md)")
    elif not report["namespaces"]:
        notes.append("warning: student code ran as unprivileged uids, but namespaces are not "
                     "available here: it could use the network and read files readable by "
                     "any user, solutions included if their permissions allow "
                     "(see docs/grading.md)")
    elif not str(report.get("view", "")).startswith("allow-list"):
        notes.append(f"WARNING: student code did not run in the allow-list view of the file "
                     f"system ({report.get('view')}): it could read files outside the "
                     "project that any user can read (see docs/grading.md, Isolation)")
    if report["user"] != "grader" and report.get("syscalls", "filtered") != "filtered":
        notes.append(f"WARNING: student code's system calls were {report['syscalls']}: "
                     "install libseccomp2 (see docs/grading.md, Isolation)")
    if report.get("unenforced"):
        notes.append(f"warning: this system refused these limits: "
                     f"{', '.join(report['unenforced'])}")
    return "\n".join(notes)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coursekit`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    commands = {"release": _release, "check": _check, "grade": _grade, "slides": _slides,
                "launch": _launch, "site": _site, "export": _export,
                "import-nbgrader": _import_nbgrader, "export-nbgrader": _export_nbgrader,
                "review": _review, "override": _override}
    try:
        return commands[args.command](args)
    except (MarkerError, GradingSpecError, SandboxError, OutputError, ValueError,
            FileNotFoundError, StoreError) as exc:
        print(f"coursekit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
