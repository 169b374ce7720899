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
    "Plan",
    "PlannedTest",
    "Probe",
    "Question",
    "Test",
    "build_plan",
    "load_assignment",
    "plan_from_json",
    "plan_to_json",
    "probe",
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


@dataclass(frozen=True)
class Question:
    """A graded question: an id (a gradebook column), a title and its tests."""

    id: str
    title: str
    tests: Sequence[Test]

    def __post_init__(self) -> None:
        _check_id("question id", self.id)
        object.__setattr__(self, "tests", tuple(self.tests))
        if not self.tests:
            raise GradingSpecError(f"question {self.id} has no tests")
        names = [t.name for t in self.tests]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise GradingSpecError(f"question {self.id}: duplicate test names {duplicates}")

    @property
    def points(self) -> float:
        """The question's maximum score: the sum of its tests' points."""
        return math.fsum(t.points for t in self.tests)


@dataclass(frozen=True)
class Assignment:
    """Every question of an assignment, and the secret seed of its hidden inputs.

    ``name`` is filled in by :func:`load_assignment` from the file name
    (``hw1_grading.py`` grades ``hw1.ipynb``).
    """

    questions: Sequence[Question]
    seed: int
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "questions", tuple(self.questions))
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
class Plan:
    """What the runner and grader need, as plain data (no functions, no secrets).

    A plan without hidden tests is exactly what ``coursekit release`` publishes.
    """

    assignment: str
    questions: tuple[tuple[str, str], ...]
    tests: tuple[PlannedTest, ...]
    probes: dict[str, str] = field(default_factory=dict)

    def max_points(self, question: str | None = None) -> float:
        """Total points of the plan's tests (of one question when given)."""
        return math.fsum(t.points for t in self.tests
                         if question is None or t.question == question)

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
        kept = {t.question for t in tests}
        return Plan(self.assignment, tuple(q for q in self.questions if q[0] in kept), tests,
                    {name: self.probes[name] for name in sorted({t.probe for t in tests})})


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
    kept = {t.question for t in tests}
    questions = tuple((q.id, q.title) for q in assignment.questions if q.id in kept)
    return Plan(assignment.name, questions, tuple(tests), dict(sorted(probes.items())))


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
        plan = Plan(str(data["assignment"]), questions, tests, probes)
    except GradingSpecError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GradingSpecError(f"{source} is malformed: {type(exc).__name__}: {exc}") from None
    missing = sorted({t.probe for t in plan.tests} - set(plan.probes))
    if missing:
        raise GradingSpecError(f"{source} is malformed: probes {missing} are missing")
    return plan
