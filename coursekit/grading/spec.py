"""How an assignment is graded, written in Python beside its solution notebook.

``solutions/<hw>_grading.py`` defines ``ASSIGNMENT``: questions, each made of
tests worth points. A test names a *probe*, the inputs to call it on and a
*reference*::

    @probe
    def one_step(student, theta, grad, velocity, lr, mu):
        theta, velocity = student["momentum_step"](theta, grad, velocity, lr=lr, mu=mu)
        return {"theta": theta, "velocity": velocity}

    def one_step_reference(theta, grad, velocity, lr, mu):
        ...  # the same step computed with torch.optim.SGD, in the grader

    ASSIGNMENT = Assignment(seed=1234, questions=[
        Question("momentum", "Momentum step", [
            Test("first_step", one_step, reference=one_step_reference, points=1,
                 inputs={"theta": np.array([1.0, -2.0]), ...}),
            Test("random_state", one_step, reference=one_step_reference, points=2,
                 hidden=True, inputs=lambda rng: {"theta": rng.normal(size=5), ...}),
        ]),
    ])

A question may also hold written answers, graded by people with a rubric::

    Question("part3", "Experiments", tests=[...], written=[
        Written("a", "Momentum as a larger rate", points=3, rubric=[
            Item("factor", 2, "explains v = g / (1 - mu), so ten times the rate"),
            Item("numbers", 1, "quotes the two final losses"),
            Item("no_run", -1, "claims a number the notebook does not compute"),
        ]),
    ])

The solution notebook marks the answer's region ``<!-- BEGIN ANSWER part3/a -->``; the
release shows the student the points ("3 points, graded by hand"), never the rubric. A
grade by hand is the sum of the rubric items chosen plus extra points, between 0 and the
answer's points (``coursekit review``; :mod:`coursekit.grading.store`).

The probe runs in the student's process and returns raw outputs; the reference
runs in the grader's process on the same inputs; the grader compares the two
with the test's tolerances. Public tests have fixed inputs and ship with the
homework (so students can check themselves); hidden tests draw their inputs from
the assignment's secret ``seed`` and never leave the grader.

:func:`build_plan` turns an :class:`Assignment` into a :class:`Plan`: plain data
(probe sources, inputs, expected outputs) that the runner, the grader and the
self-check work from, and that ``coursekit release`` writes, public part only,
into the metadata of ``homework/<hw>.ipynb``.
"""

from __future__ import annotations

import builtins
import dis
import hashlib
import importlib.util
import inspect
import json
import math
import re
import sys
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from coursekit.grading.child import WireError, decode, encode

__all__ = [
    "Assignment",
    "GradingSpecError",
    "Item",
    "Late",
    "Plan",
    "PlannedTest",
    "PlannedWritten",
    "Probe",
    "Question",
    "RubricItem",
    "Test",
    "Written",
    "build_plan",
    "load_assignment",
    "plan_from_json",
    "plan_to_json",
    "probe",
    "written_of",
]

PLAN_FORMAT = 1
_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_PROBE_GLOBALS = frozenset(dir(builtins)) | {"np", "math"}


class GradingSpecError(ValueError):
    """A grading file or public-checks file that cannot be used as written."""


def _check_id(kind: str, value: Any) -> None:
    if not isinstance(value, str) or not _ID.match(value):
        raise GradingSpecError(f"{kind} must be a lower-case identifier like 'adam_step', "
                               f"got {value!r}")


@dataclass(frozen=True)
class Probe:
    """A function that runs in the student's process: see :func:`probe`."""

    name: str
    source: str


def _global_names(code: types.CodeType) -> set[str]:
    names = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def probe(func: Callable[..., Any]) -> Probe:
    """Declare ``func(student, **inputs)`` as a probe.

    The probe's source code is sent to the student's process and run there, so
    it may use only its arguments, the builtins, ``np`` and ``math`` (import
    anything else inside the function). ``student[name]`` is the notebook's
    global ``name``. Return numbers, arrays or tensors, or lists, tuples and
    string-keyed dicts of them.

    Raises
    ------
    GradingSpecError
        If ``func`` uses a global name that will not exist in the student's process.
    """
    if not inspect.isfunction(func):
        raise GradingSpecError(f"@probe decorates a function, got {func!r}")
    params = list(inspect.signature(func).parameters)
    if not params or params[0] != "student":
        raise GradingSpecError(f"probe {func.__name__}: the first parameter must be "
                               f"'student', got {params[:1]}")
    unknown = sorted(_global_names(func.__code__) - _PROBE_GLOBALS)
    if unknown:
        raise GradingSpecError(
            f"probe {func.__name__} uses {', '.join(unknown)}, which will not exist in "
            "the student's process: pass values as inputs, or import inside the probe")
    lines = textwrap.dedent(inspect.getsource(func)).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    return Probe(func.__name__, "\n".join(lines[start:]) + "\n")


@dataclass(frozen=True)
class Test:
    """One graded check: call ``probe`` on ``inputs``, compare with ``reference``.

    Parameters
    ----------
    name : str
        Identifier, unique within its question (``"first_step"``).
    probe : Probe
        What to run in the student's process (see :func:`probe`).
    inputs : dict or callable
        Keyword arguments of the probe and of the reference. Public tests give a
        fixed dict; hidden tests may give ``inputs(rng)``, drawn from a NumPy
        Generator seeded by the assignment's secret seed and the test's name.
    reference : callable
        ``reference(**inputs)``, run by the grader (with coursekit or torch); its
        result has the structure the probe's should have.
    points : float
        Earned when every value matches; a question's tests add up.
    hidden : bool
        Hidden tests run only when grading; students see only pass/fail and points.
    description : str
        One line shown to students with the result.
    rtol, atol : float
        Numbers match when ``|got - expected| <= atol + rtol * |expected|``.
    """

    __test__ = False  # not a pytest test class

    name: str
    probe: Probe
    inputs: Mapping[str, Any] | Callable[[np.random.Generator], Mapping[str, Any]]
    reference: Callable[..., Any]
    points: float = 1.0
    hidden: bool = False
    description: str = ""
    rtol: float = 1e-6
    atol: float = 1e-8

    def __post_init__(self) -> None:
        _check_id("test name", self.name)
        if not isinstance(self.probe, Probe):
            raise GradingSpecError(f"test {self.name}: probe must come from @probe, "
                                   f"got {self.probe!r}")
        if not callable(self.reference):
            raise GradingSpecError(f"test {self.name}: reference must be callable, "
                                   f"got {self.reference!r}")
        if callable(self.inputs) and not self.hidden:
            raise GradingSpecError(
                f"test {self.name}: a public test needs fixed inputs (a dict); only hidden "
                "tests draw inputs from the secret seed")
        if not callable(self.inputs) and not isinstance(self.inputs, Mapping):
            raise GradingSpecError(f"test {self.name}: inputs must be a dict or a "
                                   f"function of rng, got {self.inputs!r}")
        for arg, value in (("points", self.points), ("rtol", self.rtol), ("atol", self.atol)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise GradingSpecError(f"test {self.name}: {arg} must be a finite number "
                                       f">= 0, got {value!r}")
        if self.points == 0:
            raise GradingSpecError(f"test {self.name}: points must be > 0, got 0")


def _check_points(what: str, value: Any, *, signed: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or (not signed and value <= 0) or value == 0:
        rule = "a finite number other than 0" if signed else "a finite number > 0"
        raise GradingSpecError(f"{what} must be {rule}, got {value!r}")


@dataclass(frozen=True)
class Item:
    """One rubric item of a written answer: an id, its points and what earns them.

    ``points`` may be negative: a deduction (``Item("no_units", -1, "numbers without
    units")``). The id names the item in the grading store, so the rubric's wording
    and points can be corrected after grading has started: stored grades follow.
    """

    id: str
    points: float
    description: str

    def __post_init__(self) -> None:
        _check_id("rubric item id", self.id)
        _check_points(f"rubric item {self.id}: points", self.points, signed=True)
        if not isinstance(self.description, str) or not self.description.strip():
            raise GradingSpecError(f"rubric item {self.id} needs a description")


@dataclass(frozen=True)
class Written:
    """A written answer graded by people: ``name`` (with its question's id, the answer
    region ``question/name`` of the solution notebook), a title, its maximum points and
    the rubric items a grader chooses from (kept from students).

    The grading page shows a grader the outputs the answer discusses: by default those of
    the code cells of its own part (since the last heading before it); ``shows`` names
    other parts instead, by the start of their headings (``shows=("5a.", "5b.")`` for an
    answer in a discussion section about the figures of sections 5a and 5b)."""

    name: str
    title: str
    points: float
    rubric: Sequence[Item]
    shows: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_id("written answer name", self.name)
        object.__setattr__(self, "shows", (self.shows,) if isinstance(self.shows, str)
                           else tuple(self.shows))
        if not all(isinstance(h, str) and h.strip() for h in self.shows):
            raise GradingSpecError(f"written answer {self.name}: shows must be headings' "
                                   f"first words, got {self.shows!r}")
        _check_points(f"written answer {self.name}: points", self.points)
        object.__setattr__(self, "rubric", tuple(self.rubric))
        if not self.rubric or not all(isinstance(i, Item) for i in self.rubric):
            raise GradingSpecError(f"written answer {self.name}: rubric must be a "
                                   f"non-empty list of Item, got {self.rubric!r}")
        ids = [i.id for i in self.rubric]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise GradingSpecError(f"written answer {self.name}: duplicate rubric item "
                                   f"ids {duplicates}")
        best = math.fsum(i.points for i in self.rubric if i.points > 0)
        if best < self.points:
            raise GradingSpecError(
                f"written answer {self.name}: its rubric's positive items add up to "
                f"{best:g}, less than its {self.points:g} points")


@dataclass(frozen=True)
class Question:
    """A graded question: an id (a gradebook column), a title, its tests and its
    written answers (at least one of the two)."""

    id: str
    title: str
    tests: Sequence[Test] = ()
    written: Sequence[Written] = ()

    def __post_init__(self) -> None:
        _check_id("question id", self.id)
        object.__setattr__(self, "tests", tuple(self.tests))
        object.__setattr__(self, "written", tuple(self.written))
        if not self.tests and not self.written:
            raise GradingSpecError(f"question {self.id} has no tests and no written answers")
        if not all(isinstance(w, Written) for w in self.written):
            raise GradingSpecError(f"question {self.id}: written must hold Written(...), "
                                   f"got {self.written!r}")
        for kind, names in (("test", [t.name for t in self.tests]),
                            ("written answer", [w.name for w in self.written])):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise GradingSpecError(f"question {self.id}: duplicate {kind} names "
                                       f"{duplicates}")

    @property
    def points(self) -> float:
        """The question's maximum score: its tests' points and its written answers'."""
        return math.fsum([*(t.points for t in self.tests), *(w.points for w in self.written)])


@dataclass(frozen=True)
class Late:
    """The late policy of an assignment with a deadline.

    ``per_day`` percent of the score is deducted for each day or part of a day after
    the deadline (and the student's extension); a submission at most ``grace`` late
    (``"15min"``, ``"2h"``) counts as on time; at most ``cap`` percent is ever
    deducted. See :mod:`coursekit.grading.late` for the arithmetic.
    """

    per_day: float = 0.0
    grace: str = "0"
    cap: float = 100.0

    def __post_init__(self) -> None:
        for arg, value in (("per_day", self.per_day), ("cap", self.cap)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not 0 <= value <= 100:
                raise GradingSpecError(f"late {arg} must be a percentage in [0, 100], "
                                       f"got {value!r}")
        from coursekit.grading.late import parse_duration

        try:
            parse_duration(self.grace)
        except ValueError as exc:
            raise GradingSpecError(f"late grace: {exc}") from None


@dataclass(frozen=True)
class Assignment:
    """Every question of an assignment, and the secret seed of its hidden inputs.

    ``deadline`` (ISO 8601 with its offset, ``"2026-10-02T23:59+02:00"``) and ``late``
    (a :class:`Late` policy) apply to the gradebook; ``coursekit grade --deadline``
    overrides the deadline. ``name`` is filled in by :func:`load_assignment` from the file name
    (``hw1_grading.py`` grades ``hw1.ipynb``).
    """

    questions: Sequence[Question]
    seed: int
    name: str = ""
    deadline: str | None = None
    late: Late | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "questions", tuple(self.questions))
        if self.deadline is not None:
            from coursekit.grading.late import parse_deadline

            try:
                parse_deadline(self.deadline)
            except ValueError as exc:
                raise GradingSpecError(f"deadline: {exc}") from None
        if self.late is not None and not isinstance(self.late, Late):
            raise GradingSpecError(f"late must be a Late(...), got {self.late!r}")
        if not self.questions:
            raise GradingSpecError("an assignment needs at least one question")
        ids = [q.id for q in self.questions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise GradingSpecError(f"duplicate question ids {duplicates}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise GradingSpecError(f"seed must be an int >= 0, got {self.seed!r}")


def load_assignment(path: str | Path) -> Assignment:
    """Import ``<hw>_grading.py`` and return its ``ASSIGNMENT``, named ``<hw>``.

    Raises
    ------
    GradingSpecError
        If the file name does not end in ``_grading.py``, the file fails to
        import, or it defines no ``ASSIGNMENT``.
    """
    path = Path(path)
    if not path.name.endswith("_grading.py"):
        raise GradingSpecError(f"a grading file is named <hw>_grading.py, got {path}")
    if not path.is_file():
        raise GradingSpecError(f"grading file not found: {path}")
    name = path.name.removesuffix("_grading.py")
    module_name = f"_coursekit_grading_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except GradingSpecError:
        raise
    except Exception as exc:
        raise GradingSpecError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    assignment = getattr(module, "ASSIGNMENT", None)
    if not isinstance(assignment, Assignment):
        raise GradingSpecError(f"{path} must define ASSIGNMENT = Assignment(...)")
    return replace(assignment, name=name)


@dataclass(frozen=True)
class PlannedTest:
    """A test with its inputs drawn and its expected output computed: plain data."""

    __test__ = False  # not a pytest test class

    question: str
    name: str
    description: str
    points: float
    hidden: bool
    probe: str
    inputs: dict
    expected: Any
    rtol: float
    atol: float

    @property
    def key(self) -> str:
        """``"question/name"``, unique within the assignment."""
        return f"{self.question}/{self.name}"


@dataclass(frozen=True)
class RubricItem:
    """A rubric item as plain data: id, points, description."""

    id: str
    points: float
    description: str


@dataclass(frozen=True)
class PlannedWritten:
    """A written answer as plain data; ``rubric`` is empty in a public plan."""

    question: str
    name: str
    title: str
    points: float
    rubric: tuple[RubricItem, ...] = ()
    shows: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``"question/name"``: the answer region's name in the notebook."""
        return f"{self.question}/{self.name}"

    def item_points(self) -> dict[str, float]:
        """``{item id: points}`` of the rubric."""
        return {item.id: item.points for item in self.rubric}


def written_of(assignment: Assignment, *, rubric: bool = True) -> tuple[PlannedWritten, ...]:
    """The written answers of ``assignment`` as plain data, in question order (no
    reference runs: cheap). ``rubric=False`` leaves the rubrics out, as the release does."""
    return tuple(
        PlannedWritten(question.id, w.name, w.title, float(w.points),
                       tuple(RubricItem(i.id, float(i.points), i.description)
                             for i in w.rubric) if rubric else (), tuple(w.shows))
        for question in assignment.questions for w in question.written)


@dataclass(frozen=True)
class Plan:
    """What the runner and grader need, as plain data (no functions, no secrets).

    A plan without hidden tests (and without the rubrics of its written answers) is
    exactly what ``coursekit release`` publishes.
    """

    assignment: str
    questions: tuple[tuple[str, str], ...]
    tests: tuple[PlannedTest, ...]
    probes: dict[str, str] = field(default_factory=dict)
    written: tuple[PlannedWritten, ...] = ()

    def max_points(self, question: str | None = None) -> float:
        """Total points of the plan's tests, the autograded part (of one question when
        given)."""
        return math.fsum(t.points for t in self.tests
                         if question is None or t.question == question)

    def written_points(self, question: str | None = None) -> float:
        """Total points of the written answers (of one question when given)."""
        return math.fsum(w.points for w in self.written
                         if question is None or w.question == question)

    def total_points(self, question: str | None = None) -> float:
        """Tests and written answers together: what the gradebook counts."""
        return self.max_points(question) + self.written_points(question)

    def select(self, question: str | None = None, *, public_only: bool = False) -> Plan:
        """The plan restricted to one question and/or to its public tests.

        Raises
        ------
        GradingSpecError
            If ``question`` is not one of the plan's question ids.
        """
        ids = [qid for qid, _ in self.questions]
        if question is not None and question not in ids:
            raise GradingSpecError(f"unknown question {question!r}; this assignment has "
                                   f"{', '.join(ids)}")
        tests = tuple(t for t in self.tests
                      if (question is None or t.question == question)
                      and not (public_only and t.hidden))
        written = tuple(replace(w, rubric=()) if public_only else w for w in self.written
                        if question is None or w.question == question)
        kept = {t.question for t in tests} | {w.question for w in written}
        return Plan(self.assignment, tuple(q for q in self.questions if q[0] in kept), tests,
                    {name: self.probes[name] for name in sorted({t.probe for t in tests})},
                    written)


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _plain(value: Any, what: str) -> Any:
    try:
        return decode(encode(value))
    except WireError as exc:
        raise GradingSpecError(f"{what}: {exc}") from None


def build_plan(assignment: Assignment, *, seed: int | None = None,
               include_hidden: bool = True) -> Plan:
    """Draw every test's inputs and compute its expected output with its reference.

    Parameters
    ----------
    assignment : Assignment
        As returned by :func:`load_assignment`.
    seed : int, optional
        Overrides ``assignment.seed`` for the hidden inputs (a new term's secret).
    include_hidden : bool
        False gives the public plan only, without touching the seed.

    Raises
    ------
    GradingSpecError
        If inputs or a reference's result are not plain data, or a reference raises.
    """
    seed = assignment.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GradingSpecError(f"seed must be an int >= 0, got {seed!r}")
    tests, probes = [], {}
    for question in assignment.questions:
        for test in question.tests:
            if test.hidden and not include_hidden:
                continue
            key = f"{question.id}/{test.name}"
            if callable(test.inputs):
                raw = test.inputs(np.random.default_rng([seed, _stable_hash(key)]))
            else:
                raw = test.inputs
            if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
                raise GradingSpecError(f"test {key}: inputs must be a dict with string keys")
            inputs = _plain(dict(raw), f"test {key} inputs")
            try:
                result = test.reference(**_plain(inputs, key))
            except Exception as exc:
                raise GradingSpecError(f"test {key}: the reference raised "
                                       f"{type(exc).__name__}: {exc}") from exc
            expected = _plain(result, f"test {key} reference result")
            tests.append(PlannedTest(question.id, test.name, test.description,
                                     float(test.points), test.hidden, test.probe.name,
                                     inputs, expected, float(test.rtol), float(test.atol)))
            if probes.setdefault(test.probe.name, test.probe.source) != test.probe.source:
                raise GradingSpecError(f"two different probes are named {test.probe.name}")
    written = written_of(assignment, rubric=include_hidden)
    kept = {t.question for t in tests} | {w.question for w in written}
    questions = tuple((q.id, q.title) for q in assignment.questions if q.id in kept)
    return Plan(assignment.name, questions, tuple(tests), dict(sorted(probes.items())),
                written)


def plan_to_json(plan: Plan) -> str:
    """The plan as stable JSON text (sorted keys, one space indent, newline at the end)."""
    data = {
        "format": PLAN_FORMAT,
        "assignment": plan.assignment,
        "questions": [{"id": qid, "title": title} for qid, title in plan.questions],
        "probes": plan.probes,
        "tests": [{
            "question": t.question, "name": t.name, "description": t.description,
            "points": t.points, "hidden": t.hidden, "probe": t.probe,
            "inputs": encode(t.inputs), "expected": encode(t.expected),
            "rtol": t.rtol, "atol": t.atol,
        } for t in plan.tests],
    }
    if plan.written:  # absent when there are none: plans of such assignments are unchanged
        data["written"] = [{
            "question": w.question, "name": w.name, "title": w.title, "points": w.points,
            "rubric": [{"id": i.id, "points": i.points, "description": i.description}
                       for i in w.rubric],
            **({"shows": list(w.shows)} if w.shows else {}),
        } for w in plan.written]
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def plan_from_json(text: str, source: str = "public checks") -> Plan:
    """Read a plan written by :func:`plan_to_json`.

    Raises
    ------
    GradingSpecError
        If ``text`` is not such a plan (``source`` names it in the message).
    """
    try:
        data = json.loads(text)
        if data["format"] != PLAN_FORMAT:
            raise GradingSpecError(f"{source}: format {data['format']!r} is not "
                                   f"{PLAN_FORMAT}; release the homework again")
        tests = tuple(PlannedTest(
            t["question"], t["name"], t["description"], float(t["points"]), bool(t["hidden"]),
            t["probe"], decode(t["inputs"]), decode(t["expected"]), float(t["rtol"]),
            float(t["atol"])) for t in data["tests"])
        questions = tuple((q["id"], q["title"]) for q in data["questions"])
        probes = {str(k): str(v) for k, v in data["probes"].items()}
        written = tuple(PlannedWritten(
            str(w["question"]), str(w["name"]), str(w["title"]), float(w["points"]),
            tuple(RubricItem(str(i["id"]), float(i["points"]), str(i["description"]))
                  for i in w["rubric"]), tuple(str(h) for h in w.get("shows", ())))
            for w in data.get("written", ()))
        plan = Plan(str(data["assignment"]), questions, tests, probes, written)
    except GradingSpecError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GradingSpecError(f"{source} is malformed: {type(exc).__name__}: {exc}") from None
    missing = sorted({t.probe for t in plan.tests} - set(plan.probes))
    if missing:
        raise GradingSpecError(f"{source} is malformed: probes {missing} are missing")
    return plan
