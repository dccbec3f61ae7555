"""The repository speaks for itself: every relative link in the README and docs/ points to a file (and heading)
that exists, and no product file cites a file a user of the repository does not have, nor an issue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PRODUCT = [ROOT / "core", ROOT / "api", ROOT / "backtest", ROOT / "scripts", ROOT / "docs"]
PRODUCT_FILES = [ROOT / "openapi.yaml", ROOT / "README.md"]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".sh", ".toml", ".txt", ".cfg", ".ini"}

ISSUE_WORDS = r"\bissues? ?#?[0-9]|issues? ask|issue notes?"
OUTSIDE_FILES = r"shared/reference|DESIGN\.md|risk-models\.md|liquidation-formulas\.md"
#: product files: issue words, files outside the repository (``../shared`` included)
PRODUCT_PATTERN = re.compile(rf"{ISSUE_WORDS}|\.\./shared|{OUTSIDE_FILES}", re.IGNORECASE)
#: tests may read ``../shared/data`` through the ``shared_data`` fixture, but cite neither issues nor notes
TEST_PATTERN = re.compile(rf"{ISSUE_WORDS}|{OUTSIDE_FILES}", re.IGNORECASE)
#: the repository's own documents, which the patterns above would otherwise match
IN_REPO = re.compile(r"docs/(?:risk-models|formulas|data)\.md")
IN_DOCS = re.compile(r"\[[^\]]*\]\((?:risk-models|formulas|data)\.md[^)]*\)")  # a link between docs/ files

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((i, line))
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[`*_~]", "", text.lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in _prose(path):
        m = HEADING.match(line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(path: Path) -> list[tuple[int, str]]:
    return [(i, m.group(1)) for i, line in _prose(path) for m in LINK.finditer(line)]


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)  # http:, https:, mailto: ...


def test_the_markdown_files_exist_and_have_links() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in MARKDOWN}
    assert {"README.md", "docs/formulas.md", "docs/risk-models.md", "docs/data.md"} <= names
    assert all(any(_relative(t) for _, t in _links(p)) for p in MARKDOWN)


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_an_existing_file_and_heading(doc: Path) -> None:
    broken = []
    for line, target in _links(doc):
        if not _relative(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{doc.name}:{line}: {target} (no such file)")
        elif ROOT not in dest.parents and dest != ROOT:
            broken.append(f"{doc.name}:{line}: {target} (outside the repository)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{doc.name}:{line}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def _text_files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_file():
            out.append(p)
            continue
        for f in sorted(p.rglob("*")):
            if f.is_file() and f.suffix in TEXT_SUFFIXES and "__pycache__" not in f.parts:
                out.append(f)
    return out


def _cited(line: str, pattern: re.Pattern[str], in_docs: bool = False) -> str | None:
    """The citation ``pattern`` finds in ``line`` once the repository's own documents are taken out."""
    text = IN_REPO.sub("", line)
    if in_docs:
        text = IN_DOCS.sub("", text)
    m = pattern.search(text)
    return m.group(0) if m else None


def _citations(files: list[Path], pattern: re.Pattern[str]) -> list[str]:
    found = []
    for f in files:
        in_docs = f.parent == ROOT / "docs"
        for i, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            hit = _cited(line, pattern, in_docs)
            if hit:
                found.append(f"{f.relative_to(ROOT)}:{i}: {hit!r} in {line.strip()[:100]!r}")
    return found


def test_product_files_cite_nothing_outside_the_repository() -> None:
    files = _text_files(PRODUCT + PRODUCT_FILES)
    assert len(files) > 50  # the walk found the product
    found = _citations(files, PRODUCT_PATTERN)
    assert not found, "cite the exchange page, the paper or a docs/ file instead:\n" + "\n".join(found)


def test_tests_cite_no_issues_or_outside_documents() -> None:
    files = [f for f in _text_files([ROOT / "tests"]) if f.name != Path(__file__).name]
    assert len(files) > 20
    found = _citations(files, TEST_PATTERN)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("line", "pattern", "cited"),
    [
        ("see issue 5", PRODUCT_PATTERN, True),
        ("the ratios the issues ask for", PRODUCT_PATTERN, True),
        ("they go into the issue notes", PRODUCT_PATTERN, True),
        ("documented in ``../shared/data/README.md``", PRODUCT_PATTERN, True),
        ("(liquidation-formulas.md §9)", PRODUCT_PATTERN, True),
        ("(risk-models.md §3.1)", PRODUCT_PATTERN, True),
        ("the API contract (DESIGN.md)", PRODUCT_PATTERN, True),
        ("``docs/risk-models.md`` §1.1", PRODUCT_PATTERN, False),
        ("skipped without ../shared/data", TEST_PATTERN, False),
        ("copied from shared/reference/worked-examples.json", TEST_PATTERN, True),
    ],
)
def test_the_citation_check_catches_what_it_should(line: str, pattern: re.Pattern[str], cited: bool) -> None:
    assert (_cited(line, pattern) is not None) == cited


def test_docs_may_link_each_other_by_relative_name() -> None:
    line = "are in [risk-models.md](risk-models.md); see ``risk-models.md`` §3"
    assert _cited(line, PRODUCT_PATTERN, in_docs=True) == "risk-models.md"  # the second, bare mention
    assert _cited("in [risk-models.md](risk-models.md)", PRODUCT_PATTERN, in_docs=True) is None


def test_slug_matches_github_anchors() -> None:
    assert _slug("Liquidation proxy") == "liquidation-proxy"
    assert _slug("1.2 Discrete monitoring: the Broadie–Glasserman–Kou correction") == (
        "12-discrete-monitoring-the-broadieglassermankou-correction"
    )
    assert _slug("A newcomer's path") == "a-newcomers-path"


DOCS = sorted((ROOT / "docs").glob("*.md"))
TEST_NAME = re.compile(r"`(test_\w+)`")
PYTHON_NAME = re.compile(r"`((?:core|backtest)(?:\.\w+)+)")
CASE_ID = re.compile(r"`((?:binance|bybit)-[a-z0-9-]+)`")


def _defined_tests() -> set[str]:
    names = set()
    for f in (ROOT / "tests").rglob("test_*.py"):
        names.update(re.findall(r"^\s*def (test_\w+)", f.read_text(encoding="utf-8"), re.MULTILINE))
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_tests_and_functions_the_docs_name_exist(doc: Path) -> None:
    import importlib

    from worked_examples import CASES

    text = doc.read_text(encoding="utf-8")
    missing = sorted(set(TEST_NAME.findall(text)) - _defined_tests())
    missing += sorted(set(CASE_ID.findall(text)) - {c.id for c in CASES})
    for dotted in sorted(set(PYTHON_NAME.findall(text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr, None)
            if obj is None:
                missing.append(dotted)
            break
    assert not missing, f"{doc.name} names what does not exist: {missing}"
