"""The course cites its sources (issue 25): one bibliography, used both ways.

``references.bib`` is the one bibliography. The checks:

* no "seed 000".."seed 004" (the old internal labels of the source documents) in
  user-facing text: lectures, homework, solutions, README, docs, the library;
* every lecture and homework notebook ends with a ``## References`` cell, each
  bullet starting with its bib key in brackets (``- [kingma2015adam] ...``);
* every key used (References cells, docstrings' NumPy ``References`` sections)
  exists in the bib, and every bib entry is cited somewhere (References cells,
  docstrings, or an author-year citation in README/docs);
* every author-year citation in a notebook's markdown, "(Kingma and Ba, 2015)" or
  "Sutskever et al. (2013)", is listed in that notebook's References: a listed
  entry has that first-author surname and that year.

The bib is read by a small parser written here (keys, ``author``, ``year``), so the
test needs no BibTeX package.
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIB = ROOT / "references.bib"

NOTEBOOK_DIRS = ("lectures", "homework", "solutions")
# Where a student or reader sees text: "seed 00x" must not appear in any of it.
USER_FACING = [*NOTEBOOK_DIRS, "README.md", "docs", "coursekit"]
USER_FACING_SUFFIXES = {".ipynb", ".md", ".py", ".json", ".txt", ".rst"}
# Library code whose docstrings may carry NumPy References sections.
DOCSTRING_DIRS = ("coursekit", "benchmarks")

SEED_LABEL = re.compile(r"\bseeds?[\s_-]*00[0-4]\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# The bibliography
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    key: str
    kind: str
    fields: dict[str, str]

    @property
    def first_author(self) -> str | None:
        """The first author's surname (or a corporate author's whole name), normalised."""
        author = self.fields.get("author")
        if not author:
            return None
        first = _split_top_level(author, " and ")[0].strip()
        if first.startswith("{") and first.endswith("}"):        # {ECE 60146}: one name
            return _normalise(first[1:-1])
        first = first.replace("{", "").replace("}", "")
        surname = first.split(",")[0] if "," in first else first.split()[-1]
        return _normalise(surname)

    @property
    def year(self) -> str | None:
        return self.fields.get("year")


def _normalise(name: str) -> str:
    """Lowercase ASCII, letters/digits/spaces only: 'Dollár' -> 'dollar'."""
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = re.sub(r"['’]s$", "", folded.strip())               # Hinton's -> Hinton
    folded = re.sub(r"[^0-9A-Za-z ]+", "", folded).lower()
    return " ".join(folded.split())


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside braces (BibTeX author lists)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        depth += c == "{"
        depth -= c == "}"
        if depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _read_braced(text: str, i: int) -> tuple[str, int]:
    """The content of the balanced ``{...}`` that opens at ``text[i]``, and the index after it."""
    assert text[i] == "{"
    depth = 0
    for j in range(i, len(text)):
        depth += text[j] == "{"
        depth -= text[j] == "}"
        if depth == 0:
            return text[i + 1:j], j + 1
    raise ValueError(f"unbalanced braces from offset {i}")


def parse_bib(text: str) -> dict[str, Entry]:
    """Entries of a BibTeX file: key -> Entry(kind, fields). Comments (%) are skipped."""
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("%"))
    entries: dict[str, Entry] = {}
    for match in re.finditer(r"@(\w+)\s*\{", text):
        body, _ = _read_braced(text, match.end() - 1)
        key, _, rest = body.partition(",")
        key = key.strip()
        if key in entries:
            raise ValueError(f"references.bib: duplicate key {key!r}")
        fields, i = {}, 0
        while True:
            field = re.compile(r"\s*(\w+)\s*=\s*").match(rest, i)
            if not field:
                break
            i = field.end()
            if rest[i] == "{":
                value, i = _read_braced(rest, i)
            elif rest[i] == '"':
                end = rest.index('"', i + 1)
                value, i = rest[i + 1:end], end + 1
            else:
                bare = re.compile(r"[^,\s]+").match(rest, i)
                value, i = bare.group(), bare.end()
            fields[field.group(1).lower()] = " ".join(value.split())
            comma = re.compile(r"\s*,").match(rest, i)
            if not comma:
                break
            i = comma.end()
        entries[key] = Entry(key, match.group(1).lower(), fields)
    return entries


@cache
def bib() -> dict[str, Entry]:
    return parse_bib(BIB.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------
# Author-year citations in prose
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Citation:
    text: str          # as written, e.g. "(Kingma and Ba, 2015)"
    name: str          # first author, normalised: "kingma"
    year: str          # "2015"
    explicit: bool     # "et al." / "X and Y" / parenthetical: certainly a citation


_WORD = r"[A-Z][\w'’\-]*"
_NAME = rf"{_WORD}(?:\s\d+)?"                               # "Kingma", "ECE 60146"
_MORE = rf"(?P<more>\set\sal\.|\s(?:and|&)\s{_WORD}(?:\s{_WORD})*)?"
_YEAR = r"(?P<year>(?:1[89]|20)\d\d)[a-z]?"
PARENTHETICAL_PART = re.compile(
    rf"^\s*(?:\S+\s+)*?(?P<name>{_NAME}){_MORE},\s*{_YEAR}\b")
NARRATIVE = re.compile(rf"(?P<name>{_NAME}){_MORE}\s\({_YEAR}(?:[,;][^)]*)?\)")


def _prose(markdown: str) -> str:
    """Markdown without code (fenced or inline) and without link targets."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.DOTALL)
    text = re.sub(r"`[^`]*`", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def find_citations(markdown: str) -> list[Citation]:
    """Author-year citations: "(Kingma and Ba, 2015; Reddi et al., 2018)", "Dozat (2016)"."""
    text = _prose(markdown)
    found = []
    for group in re.finditer(r"\(([^()]*)\)", text):
        for part in group.group(1).split(";"):
            m = PARENTHETICAL_PART.match(part)
            if m:
                found.append(Citation(f"({part.strip()})", _normalise(m["name"]), m["year"],
                                      explicit=True))
    for m in NARRATIVE.finditer(text):
        found.append(Citation(m.group(0), _normalise(m["name"]), m["year"],
                              explicit=m["more"] is not None))
    return found


def _known_names() -> set[str]:
    return {e.first_author for e in bib().values() if e.first_author}


def resolve(citation: Citation) -> list[str]:
    """Keys of the bib entries with this first author and year."""
    return [e.key for e in bib().values()
            if e.first_author == citation.name and e.year == citation.year]


def relevant(citation: Citation) -> bool:
    """A narrative "Word (2017)" counts only if Word is an author of the bib; the rest always."""
    return citation.explicit or citation.name in _known_names()


# --------------------------------------------------------------------------------------
# Notebooks, docstrings, files
# --------------------------------------------------------------------------------------

def notebooks() -> list[Path]:
    return sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def is_references_cell(cell: dict) -> bool:
    return (cell.get("cell_type") == "markdown"
            and _source(cell).lstrip().splitlines()[:1] == ["## References"])


REFERENCE_BULLET = re.compile(r"^\s*[-*]\s+(?P<rest>.*)$")
BULLET_KEY = re.compile(r"^\[(?P<key>[^\]\s]+)\]")


def reference_keys(cell: dict) -> tuple[list[str], list[str]]:
    """(keys, bullets without a leading [key]) of a References cell."""
    keys, bad = [], []
    for line in _source(cell).splitlines()[1:]:
        bullet = REFERENCE_BULLET.match(line)
        if not bullet:
            continue
        key = BULLET_KEY.match(bullet["rest"])
        if key:
            keys.append(key["key"])
        else:
            bad.append(line.strip())
    return keys, bad


def python_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def docstrings(path: Path) -> list[tuple[str, int, str]]:
    """(object name, line, docstring) of the module and of every class and function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                name = getattr(node, "name", "<module>")
                found.append((name, getattr(node, "lineno", 1), doc))
    return found


SECTION_HEADER = re.compile(r"^(?P<title>\S[^\n]*)\n-{3,}\s*$", re.MULTILINE)
ENTRY_KEY = re.compile(r"\[(?P<key>[a-z][a-z0-9]*)\]\s*$")


def references_section(doc: str) -> str | None:
    """The body of a NumPy-style ``References`` section, or None."""
    headers = list(SECTION_HEADER.finditer(doc))
    for i, header in enumerate(headers):
        if header["title"].strip() == "References":
            end = headers[i + 1].start() if i + 1 < len(headers) else len(doc)
            return doc[header.end():end]
    return None


def section_entries(section: str) -> list[str]:
    """The ``.. [n] ...`` entries of a References section, each joined onto one line."""
    entries = re.split(r"^\s*\.\. \[", section, flags=re.MULTILINE)[1:]
    return [" ".join(("[" + e).split()) for e in entries]


def docstring_reference_keys(path: Path) -> list[tuple[str, str, str | None]]:
    """(object, entry text, key or None) for every References entry in ``path``'s docstrings."""
    out = []
    for name, _, doc in docstrings(path):
        section = references_section(doc)
        if section is None:
            continue
        for entry in section_entries(section):
            key = ENTRY_KEY.search(entry)
            out.append((name, entry, key["key"] if key else None))
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --------------------------------------------------------------------------------------
# The parser and the citation finder themselves
# --------------------------------------------------------------------------------------

def test_bib_parser_reads_keys_authors_and_years():
    entries = parse_bib(
        "% a comment @misc{ignored,}\n"
        "@article{dollar2017x,\n  author = {Doll{\\'a}r, Piotr and {Some Group}},\n"
        '  title = "A {B} c", year = 2017,\n}\n'
        "@misc{ece60146hw2, author = {{ECE 60146}}, year = {2024}}\n"
        "@misc{anon, title = {No author}}\n")
    assert list(entries) == ["dollar2017x", "ece60146hw2", "anon"]
    assert entries["dollar2017x"].first_author == "dollar"       # braces and accent dropped
    assert entries["dollar2017x"].year == "2017"
    assert entries["dollar2017x"].fields["title"] == "A {B} c"
    assert entries["ece60146hw2"].first_author == "ece 60146"
    assert entries["anon"].first_author is None and entries["anon"].year is None
    with pytest.raises(ValueError, match="duplicate"):
        parse_bib("@misc{a, year = 1}\n@misc{a, year = 2}")


def test_citation_finder_reads_the_course_forms_and_ignores_code():
    text = ("Adam (Kingma and Ba, 2015; Reddi et al., 2018) and AdamW "
            "(see Loshchilov & Hutter, 2019, section 2). Sutskever et al. (2013) showed, "
            "Dozat (2016, eq. 7) wrote; the report (ECE 60146, 2024). "
            "Not citations: `f(Smith, 2017)`, (lr = 0.1, 2020 steps), Lecture 05 (2024), "
            "[a link](https://x.org/Smith_(2017)).")
    found = {(c.name, c.year, c.explicit) for c in find_citations(text)}
    assert found == {("kingma", "2015", True), ("reddi", "2018", True),
                     ("loshchilov", "2019", True), ("sutskever", "2013", True),
                     ("dozat", "2016", False), ("ece 60146", "2024", True),
                     ("lecture 05", "2024", False)}
    lecture = next(c for c in find_citations(text) if c.name == "lecture 05")
    assert not relevant(lecture)                     # a bare "Word (year)" of no bib author


# --------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------

def test_bibliography_keys_and_entries_are_well_formed():
    entries = bib()
    assert entries, "references.bib has no entries"
    problems = []
    for key, e in entries.items():
        if not re.fullmatch(r"[a-z][a-z0-9]*", key):
            problems.append(f"{key}: keys are lowercase ASCII letters and digits")
        if "title" not in e.fields:
            problems.append(f"{key}: no title")
        if e.first_author and not e.year and e.kind != "misc":
            problems.append(f"{key}: no year")
    assert not problems, "references.bib:\n" + "\n".join(problems)


def test_no_seed_labels_in_user_facing_text():
    hits = []
    for target in USER_FACING:
        base = ROOT / target
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in files:
            if not path.is_file() or path.suffix not in USER_FACING_SUFFIXES:
                continue
            if path.suffix == ".ipynb":
                for n, cell in enumerate(_cells(path)):
                    for m in SEED_LABEL.finditer(_source(cell)):
                        hits.append(f"{_rel(path)}, cell {n}: {m.group()!r}")
            else:
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    for m in SEED_LABEL.finditer(line):
                        hits.append(f"{_rel(path)}:{n}: {m.group()!r}")
    assert not hits, ("cite the source document (see references.bib), not its internal "
                      "label:\n" + "\n".join(hits))


@pytest.mark.parametrize("path", notebooks(), ids=_rel)
def test_notebook_ends_with_references(path):
    cells = _cells(path)
    assert cells and is_references_cell(cells[-1]), (
        f"{_rel(path)}: the last cell must be a markdown cell starting '## References'")
    keys, bad = reference_keys(cells[-1])
    assert keys, f"{_rel(path)}: the References cell lists nothing"
    assert not bad, (f"{_rel(path)}, cell {len(cells) - 1}: bullets must start with "
                     "'[key]':\n" + "\n".join(bad))


@pytest.mark.parametrize("path", notebooks(), ids=_rel)
def test_notebook_reference_keys_exist(path):
    missing = []
    for n, cell in enumerate(_cells(path)):
        if is_references_cell(cell):
            missing += [f"{_rel(path)}, cell {n}: [{k}]"
                        for k in reference_keys(cell)[0] if k not in bib()]
    assert not missing, "keys not in references.bib:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", notebooks(), ids=_rel)
def test_notebook_citations_are_in_its_references(path):
    cells = _cells(path)
    listed = {k for cell in cells if is_references_cell(cell) for k in reference_keys(cell)[0]}
    problems = []
    for n, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown" or is_references_cell(cell):
            continue
        for c in find_citations(_source(cell)):
            if not relevant(c):
                continue
            keys = resolve(c)
            where = f"{_rel(path)}, cell {n}: {c.text!r}"
            if not keys:
                problems.append(f"{where}: no entry by {c.name} ({c.year}) in references.bib")
            elif not listed & set(keys):
                problems.append(f"{where}: add [{' or '.join(keys)}] to the References cell")
    assert not problems, "\n".join(problems)


def test_docstring_reference_keys_exist():
    problems = []
    for path in python_files(*DOCSTRING_DIRS):
        for name, entry, key in docstring_reference_keys(path):
            where = f"{_rel(path)}, {name}: {entry[:70]!r}"
            if key is None:
                problems.append(f"{where}: a References entry must end with its [bibkey]")
            elif key not in bib():
                problems.append(f"{where}: [{key}] is not in references.bib")
    assert not problems, "\n".join(problems)


def test_library_citations_are_in_the_bibliography():
    """Every author-year citation in the library's docstrings and in README/docs is in the bib."""
    problems = []
    for path in python_files(*DOCSTRING_DIRS):
        for name, _, doc in docstrings(path):
            for c in find_citations(doc):
                if relevant(c) and not resolve(c):
                    problems.append(f"{_rel(path)}, {name}: {c.text!r}")
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for c in find_citations(line):
                if relevant(c) and not resolve(c):
                    problems.append(f"{_rel(path)}:{n}: {c.text!r}")
    assert not problems, "no references.bib entry for:\n" + "\n".join(problems)


def cited_keys() -> dict[str, list[str]]:
    """key -> where it is cited (References cells, docstrings, README/docs)."""
    where: dict[str, list[str]] = {}
    for path in notebooks():
        for cell in _cells(path):
            if is_references_cell(cell):
                for key in reference_keys(cell)[0]:
                    where.setdefault(key, []).append(_rel(path))
    for path in python_files(*DOCSTRING_DIRS):
        for name, _, key in docstring_reference_keys(path):
            if key:
                where.setdefault(key, []).append(f"{_rel(path)}:{name}")
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for key in re.findall(r"\[([a-z][a-z0-9]*)\]", text):
            where.setdefault(key, []).append(_rel(path))
        for c in find_citations(text):
            for key in resolve(c) if relevant(c) else []:
                where.setdefault(key, []).append(_rel(path))
    return where


def test_every_bib_entry_is_cited():
    cited = cited_keys()
    uncited = sorted(set(bib()) - set(cited))
    assert not uncited, ("references.bib entries cited nowhere (no References cell, docstring "
                         "or README/docs citation):\n" + "\n".join(uncited))
