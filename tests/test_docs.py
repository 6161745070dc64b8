"""The model is documented inside the project (docs/): every `docs/NAME.md#anchor`
reference in the code, the tests, the READMEs and the docs themselves must name a file that
exists and a heading it has, and nothing may point at a document outside the repository."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for pat in ("pagecore/**/*.py", "pagecore/**/*.pyx", "pagecore/**/*.pxd",
                         "pagecore/**/*.toml", "tests/*.py", "benchmarks/*", "*.md",
                         "docs/*.md", "setup.py", "pyproject.toml")
           for p in ROOT.glob(pat) if p.is_file() and p.suffix not in (".so", ".c")]
# `docs/x.md#a` anywhere; in docs/*.md also relative markdown links `(x.md#a)`
REF = re.compile(r"docs/([\w.-]+\.md)(?:#([\w-]+))?")
REL = re.compile(r"\]\(([\w.-]+\.md)(?:#([\w-]+))?\)")


def slug(heading):
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped (not - or _),
    spaces to '-'."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def anchors(doc):
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", doc.read_text(), re.M)}


def references():
    for p in SOURCES:
        if p.name == "test_docs.py":           # its docstring shows the pattern itself
            continue
        text = p.read_text(errors="replace")
        for m in REF.finditer(text):
            yield p, m.group(1), m.group(2)
        if p.parent.name == "docs" or p.name == "README.md":
            for m in REL.finditer(text):
                yield p, (m.group(1)), m.group(2)


def test_docs_exist():
    for name in ("model.md", "scenarios.md", "json-schemas.md"):
        assert (ROOT / "docs" / name).is_file(), name


def test_every_docs_reference_resolves():
    refs = list(references())
    assert len(refs) > 30                # the code cites the docs; the test sees it
    bad = []
    for src, name, anchor in refs:
        doc = ROOT / "docs" / name
        if not doc.is_file():
            bad.append(f"{src.relative_to(ROOT)}: docs/{name} does not exist")
        elif anchor and anchor not in anchors(doc):
            bad.append(f"{src.relative_to(ROOT)}: docs/{name} has no heading #{anchor}")
    assert not bad, "\n".join(bad)


def test_slug_follows_github():
    assert slug("Who passes MHP_MEMMAP_ON_MEMORY") == "who-passes-mhp_memmap_on_memory"
    assert slug("The compare report") == "the-compare-report"


def test_no_reference_to_documents_outside_the_repository():
    # the outside research note and the shared folder it lived in (spelled in pieces so
    # that this test does not cite them itself)
    outside = ("kernel-" + "semantics", "shared/" + "docs", "toolchain-" + "notes",
               "the " + "spec")
    bad = [f"{p.relative_to(ROOT)}: {w}" for p in SOURCES
           for w in outside if w in p.read_text(errors="replace").lower()]
    assert not bad, "\n".join(bad)
