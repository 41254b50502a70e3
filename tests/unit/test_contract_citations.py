"""Every contract citation in code and documents points to a section of docs/contract.md.

Code, OpenAPI/AsyncAPI documents, migrations and READMEs cite the public contract as
"CONTRACT §6", "CONTRACT §2-§5", "CONTRACT §2–§6", "CONTRACT §4, §5, §7", "CONTRACT.md §7" or
"docs/contract.md §3". The contract lives in ``docs/contract.md`` with the section numbers of
the design card's CONTRACT.md (v1.1), each section heading preceded by a stable anchor
(``<a id="section-N"></a>``). These tests fail, naming ``file:line``, when a citation names a
section the document lacks, when a link into it (``contract.md#…``, or ``(#…)`` inside it)
names an anchor it lacks, or when a section heading has lost its anchor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract.md"
SCANNED_DIRS = ("shared", "services", "ripples", "docs", "deploy", "tests")
SCANNED_FILES = ("README.md",)
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".sql", ".toml"}
SKIPPED_PARTS = {".venv", "__pycache__", ".ripples", "node_modules", ".git"}

# "CONTRACT §2", "CONTRACT.md §7", "docs/contract.md §3", then more sections: a range with a
# dash (-, –, —) and an optional second §, or a list joined by ",", "/", "and", "or" with its
# §: "§2-§5", "§2–6", "§4, §5, §7", "§8 and §9". A plain number after a comma ("§6, 30 days")
# is not a section.
_MORE = r"\s*(?:[-–—]\s*§?|(?:,|/|\band\b|\bor\b)\s*§)\s*\d+"
CITATION = re.compile(
    rf"(?:\bCONTRACT(?:\.md)?|\bcontract\.md)\s*(?P<sections>§\s*\d+(?:{_MORE})*)"
)
_PART = re.compile(r"[^\d\-–—]*(?P<dash>[-–—])?[^\d]*(?P<n>\d+)")
LINK = re.compile(r"contract\.md#(?P<anchor>[A-Za-z0-9_-]+)")
OWN_LINK = re.compile(r"\]\(#(?P<anchor>[A-Za-z0-9_-]+)\)")
HEADING = re.compile(r"^## (?P<n>\d+)\. ")
ANCHOR = re.compile(r'<a id="(?P<id>[A-Za-z0-9_-]+)"></a>')


@dataclass(frozen=True)
class Citation:
    where: str  # file:line
    sections: tuple[int, ...]
    text: str


def cited_sections(text: str) -> tuple[int, ...]:
    """The section numbers one citation names, ranges expanded: "§2–§5" → 2, 3, 4, 5."""
    out: list[int] = []
    for part in _PART.finditer(text):
        number = int(part["n"])
        if part["dash"] and out and number > out[-1]:
            out.extend(range(out[-1] + 1, number + 1))
        else:
            out.append(number)
    return tuple(out)


def citations(lines: Iterable[str], name: str) -> Iterator[Citation]:
    for number, line in enumerate(lines, 1):
        for match in CITATION.finditer(line):
            yield Citation(f"{name}:{number}", cited_sections(match["sections"]), match[0])


def links(
    lines: Iterable[str], name: str, pattern: re.Pattern[str] = LINK
) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(lines, 1):
        for match in pattern.finditer(line):
            yield f"{name}:{number}", match["anchor"]


def scanned_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES]
    for folder in SCANNED_DIRS:
        files.extend(
            path
            for path in (ROOT / folder).rglob("*")
            if path.suffix in SUFFIXES
            and path.is_file()
            and not SKIPPED_PARTS & set(path.relative_to(ROOT).parts)
        )
    return sorted(files)


def contract_sections(text: str) -> set[int]:
    return {int(m["n"]) for line in text.splitlines() if (m := HEADING.match(line))}


def contract_anchors(text: str) -> set[str]:
    return {m["id"] for m in ANCHOR.finditer(text)}


def missing_sections(found: Iterable[Citation], sections: set[int]) -> list[str]:
    """``file:line: CONTRACT §n`` for every cited section the contract lacks."""
    return [
        f"{c.where}: {c.text!r} cites §{n}, which docs/contract.md lacks"
        for c in found
        for n in c.sections
        if n not in sections
    ]


def heading_problems(text: str) -> list[str]:
    """Section headings without their ``section-N`` anchor on the line before, and numbers
    out of order."""
    problems: list[str] = []
    lines = text.splitlines()
    seen: list[int] = []
    for index, line in enumerate(lines):
        match = HEADING.match(line)
        if match is None:
            continue
        number = int(match["n"])
        seen.append(number)
        before = lines[index - 1].strip() if index else ""
        if before != f'<a id="section-{number}"></a>':
            problems.append(
                f"docs/contract.md:{index + 1}: heading {line!r} lacks "
                f'<a id="section-{number}"></a> on the line before'
            )
    if seen != sorted(seen) or len(set(seen)) != len(seen):
        problems.append(f"docs/contract.md: section numbers out of order or repeated: {seen}")
    return problems


# --- the checks on the repository ------------------------------------------------------------


def test_every_cited_section_exists() -> None:
    sections = contract_sections(CONTRACT.read_text())
    found: list[Citation] = []
    for path in scanned_files():
        text = path.read_text(errors="replace")
        found.extend(citations(text.splitlines(), str(path.relative_to(ROOT))))
    assert len(found) > 20, "the scan found almost no citations: is the pattern still right?"
    assert missing_sections(found, sections) == []


def test_every_link_to_the_contract_names_an_existing_anchor() -> None:
    anchors = contract_anchors(CONTRACT.read_text())
    bad = [
        f"{where}: contract.md#{anchor}, which docs/contract.md lacks"
        for path in scanned_files()
        for where, anchor in links(
            path.read_text(errors="replace").splitlines(), str(path.relative_to(ROOT))
        )
        if anchor not in anchors
    ]
    text = CONTRACT.read_text()
    bad += [
        f"{where}: (#{anchor}), which docs/contract.md lacks"
        for where, anchor in links(text.splitlines(), "docs/contract.md", OWN_LINK)
        if anchor not in anchors
    ]
    assert bad == []


def test_every_section_heading_has_its_anchor() -> None:
    text = CONTRACT.read_text()
    assert contract_sections(text) == set(range(1, 12)), "§1-§11, as in CONTRACT.md v1.1"
    assert heading_problems(text) == []


# --- the checks can fail -----------------------------------------------------------------------

# Built at run time, so that this file itself holds no citation of a missing section.
_C = "CONTRACT"


def test_a_citation_of_a_missing_section_is_named_with_its_file_and_line() -> None:
    lines = ["ok: " + _C + " §6", "bad: " + _C + " §12 does not exist", _C + ".md §2–§13"]
    found = list(citations(lines, "services/x.py"))
    assert [c.sections for c in found] == [(6,), (12,), (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)]
    problems = missing_sections(found, set(range(1, 12)))
    assert problems == [
        f"services/x.py:2: '{_C} §12' cites §12, which docs/contract.md lacks",
        f"services/x.py:3: '{_C}.md §2–§13' cites §12, which docs/contract.md lacks",
        f"services/x.py:3: '{_C}.md §2–§13' cites §13, which docs/contract.md lacks",
    ]


def test_citation_forms_used_in_the_repository() -> None:
    def sections(line: str) -> list[tuple[int, ...]]:
        return [c.sections for c in citations([line], "f")]

    assert sections(f"rules ({_C} §2-§5, §7)") == [(2, 3, 4, 5, 7)]
    assert sections(f"({_C} §4, §5, §7)") == [(4, 5, 7)]
    assert sections(f'{_C} §7 (v1.1 "Access")') == [(7,)]
    assert sections("see docs/contract.md §8 and §9") == [(8, 9)]
    assert sections(f"{_C}.md §10") == [(10,)]
    assert sections(f"{_C} §6, 30 days by default") == [(6,)]
    assert sections(f"{_C} §2–6") == [(2, 3, 4, 5, 6)]
    assert sections(f"{_C} §2 - §4") == [(2, 3, 4)]
    assert sections("RFC 9110 §10.2.3, and a bare §2 are not contract citations") == []


def test_a_heading_without_its_anchor_is_named() -> None:
    text = '<a id="section-1"></a>\n## 1. Events in\n\n## 2. Rings\n'
    assert heading_problems(text) == [
        "docs/contract.md:4: heading '## 2. Rings' lacks "
        '<a id="section-2"></a> on the line before'
    ]
    assert contract_sections(text) == {1, 2}


def test_a_link_to_a_missing_anchor_is_found() -> None:
    line = "[rings](docs/contract.md#section-2), [x](contract.md" + "#nowhere)"
    assert list(links([line], "R")) == [("R:1", "section-2"), ("R:1", "nowhere")]
    own = "see [§2](#section-2) and [x](" + "#nowhere)"
    found = list(links([own], "docs/contract.md", OWN_LINK))
    assert found == [("docs/contract.md:1", "section-2"), ("docs/contract.md:1", "nowhere")]
    assert "nowhere" not in contract_anchors(CONTRACT.read_text())
