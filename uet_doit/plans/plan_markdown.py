"""Reading a markdown plan: sections, list items, the paths they name, the role of each part.

Works on markdown-it's syntax tree, never with regexes over the raw text, so headings and
checkboxes inside code fences (plans quote templates) are never taken for plan content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.tree import SyntaxTreeNode

#: what a section or a list label says its items are; checked in this order
ROLES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "deliverables",
        re.compile(
            r"(?i)\b(deliverables?|outputs?|artifacts?|files (created|to create)|new files)\b"
        ),
    ),
    (
        "criteria",
        re.compile(
            r"(?i)success (metrics?|criteria)|acceptance|completion (criteria|checklist)|done when"
            r"|definition of done|assertions|exit criteria|verification"
        ),
    ),
    (
        "tasks",
        re.compile(
            r"(?i)\b(tasks?|to[-_]?dos?|checklist|next (actions|steps)|action items|work items"
            r"|steps|implementation (plan|steps)|execution plan|operations sequence)\b"
        ),
    ),
    ("reads", re.compile(r"(?i)read[-_]?only|reference (paths|files)|files to read|context files")),
    (
        "notes",
        re.compile(
            r"(?i)\b(objectives?|goals?|overview|summary|background|context|risks?|mitigations?"
            r"|non[-_]?goals|references?|rollback|timeline|assumptions|inputs|prerequisites|notes?"
            r"|appendix|glossary|principles|motivation|scope|handover|future|environment"
            r"|estimat\w*|effort|guidelines|guardrails|insights|milestones|sequencing"
            r"|commands|examples?|preconditions|role|playbook|templates?|matrix"
            r"|determinism|troubleshooting|faq|crosswalk|key features|analysis|decisions?"
            r"|impact|constraints)\b"
        ),
    ),
)
_CHECKBOX = re.compile(r"^\[( |x|X)\]\s+")
EDIT = re.compile(
    r"(?i)^(add or update|updated?|modif(y|ied)|edit(ed)?|extend(ed)?|revised?|amended?"
    r"|fix(ed)?|refactor(ed)?|move[sd]?|rename[sd]?|review|lock|normali[sz]e|validate|append)\b"
)
EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
_PLAIN_NAMES = frozenset(
    [
        "Makefile",
        "Dockerfile",
        "Containerfile",
        "Jenkinsfile",
        "Procfile",
        "Gemfile",
        "Rakefile",
        "Vagrantfile",
        "LICENSE",
        "README",
        "CHANGELOG",
        "CODEOWNERS",
    ]
)
_PATHISH = re.compile(r"^(\./|/)?[\w.\-]+(/[\w.\-]*)*$")
_FILES_LINE = re.compile(
    r"(?i)^\W*(files?( created| to create)?|outputs?|creates?|writes?)\W*:\s*(?P<rest>.+)$"
)
_SNIPPET_PATH = re.compile(r"^\s*(#|//|--|;|<!--|/\*)\s*(?P<path>[\w.\-/]+)\s*(-->|\*/)?\s*$")
PRIORITIES = [
    (re.compile("\U0001f534|\\bCRITICAL\\b|\\(critical\\)", re.I), "critical"),
    (re.compile("\U0001f7e0|\\bHIGH (VALUE|PRIORITY)\\b"), "high"),
    (re.compile("\U0001f7e1|\\bMEDIUM\\b"), "medium"),
    (re.compile("\U0001f7e2|\\bLOW PRIORITY\\b"), "low"),
    (re.compile(r"(?i)\((optional|deferred|nice to have|stretch)"), "background"),
]
MARKS = re.compile(r"\s*\(([^()]*)\)\s*$")
_MARKER_GROUP = re.compile("\\s*\\((\U0001f534|\U0001f7e0|\U0001f7e1|\U0001f7e2)[^)]*\\)")
_STOP_WORDS = "a an and are as at be by e g for from in into is it its of on or per the this to via"
_STOP = frozenset(
    f"{_STOP_WORDS} with all new add create updat md py txt json yaml yml fil each".split()
)


@dataclass
class Section:
    level: int
    title: str
    line: int
    blocks: list[SyntaxTreeNode]
    raw: str = ""  # the markdown under the heading, up to the next heading


@dataclass
class Deliverable:
    text: str
    paths: list[str]
    edit: bool
    words: set[str]
    line: int = 0
    rule: str = "deliverable"
    done: bool = False  # `- [x]`: the plan says it is done


@dataclass
class Task:
    name: str
    lines: list[str]
    paths: list[str]
    words: set[str]
    section: str | None
    line: int = 0
    rule: str = "task"
    creates: list[str] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)
    deliverables: list[str] = field(default_factory=list)
    placed: list[tuple[Deliverable, str]] = field(default_factory=list)
    output_dirs: list[str] = field(default_factory=list)
    text: str = ""  # everything the task says, for dependency phrases
    key: tuple[str, str] | None = None  # `WS-02` when the task is a heading of that shape
    done: bool = False  # `- [x]`: kept as a step with `skip: done`, not run again


def role_of(title: str) -> str | None:
    """deliverables / criteria / tasks / reads / notes, from a heading or list label."""
    # `Cross-References` is not `References`: compounds are one word
    title = re.sub(r"\w+(?:-\w+)+", lambda m: m.group().replace("-", "_"), title)
    return next((role for role, rx in ROLES if rx.search(title)), None)


def clean_title(title: str) -> str:
    return _MARKER_GROUP.sub("", title).strip()


def priority_of(title: str) -> str | None:
    return next((p for rx, p in PRIORITIES if rx.search(title)), None)


def slug(text: str, limit: int = 40) -> str:
    """Lowercase words joined by '-', cut at a word boundary: stable, readable ids."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > limit and out:
            break
        out = candidate[:limit]
    return out or "item"


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def words_of(text: str) -> set[str]:
    stems = {_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())}
    return stems - _STOP


def inline(node: SyntaxTreeNode, ticks: bool = True) -> str:
    """Plain text of inline markdown; code spans keep their backticks when `ticks`."""
    if node.type == "code_inline":
        return f"`{node.content}`" if ticks else node.content
    if node.type in ("text", "html_inline"):
        return node.content if node.type == "text" else ""
    if node.type in ("softbreak", "hardbreak"):
        return "\n" if node.type == "softbreak" and not ticks else " "
    if node.type in ("fence", "code_block"):
        return ""
    glue = "\n" if node.type != "inline" and node.block else ""  # blocks: one a line
    return glue.join(inline(child, ticks) for child in node.children)


def _code_spans(node: SyntaxTreeNode | None) -> list[str]:
    if node is None or node.type == "code_inline":
        return [node.content.strip()] if node else []
    return [span for child in node.children for span in _code_spans(child)]


def is_path(text: str, strict: bool) -> bool:
    """A file or folder path; `strict` (plain text) also wants '/' and an extension. Absolute
    and `..` paths are paths too: the bundle refuses them where `--explain` can say so."""
    if not _PATHISH.match(text) or text.startswith("-"):
        return False
    if re.fullmatch(r"[\d.]+", text.rstrip("/")) or text.endswith("."):
        return False
    if strict:
        return "/" in text and bool(EXTENSION.search(text))
    last = text.rstrip("/").rsplit("/", 1)[-1]
    # `docs/`, `a/b.py`, `b.py`, `ci/Makefile`; not `src/pipeline` or `.engimcp/trash`
    return text.endswith("/") or bool(EXTENSION.search(last)) or last in _PLAIN_NAMES


def with_dirs(paths: list[str]) -> list[str]:
    """`tests/a.py, b.py`: a bare file name after a path lives in that path's folder."""
    out: list[str] = []
    folder = ""
    for path in paths:
        if "/" in path.rstrip("/"):
            folder = path.rsplit("/", 1)[0] + "/" if not path.endswith("/") else ""
            out.append(path)
        else:
            out.append(folder + path if folder and EXTENSION.search(path) else path)
    return list(dict.fromkeys(out))


def paths_in(node: SyntaxTreeNode) -> list[str]:
    """Paths a task names: in code spans, or as plain words like **docs/X.md**."""
    found = [s.removeprefix("./") for s in _code_spans(node) if is_path(s, strict=False)]
    found += paths_in_text(_without_spans(node))
    return list(dict.fromkeys(found))


def _without_spans(node: SyntaxTreeNode | None) -> str:
    """The text outside code spans: a span that is no path (`My Docs/x.md`) stays whole."""
    return re.sub(r"`[^`]*`", " ", inline(node)) if node is not None else ""


def paths_in_text(text: str) -> list[str]:
    words = [w.rstrip(".,;:)") for w in re.findall(r"[\w./\-]+", text)]
    return [w.removeprefix("./") for w in words if is_path(w, strict=True)]


def files_line(text: str) -> tuple[list[str], list[str]] | None:
    """`Files: /add a.py, b.py /read-only c.md`: (to create, to read), or None."""
    m = _FILES_LINE.match(text.strip())
    if not m:
        return None
    creates: list[str] = []
    reads: list[str] = []
    target = creates
    for raw in re.split(r"[\s,]+", m.group("rest")):
        if raw.lower() in ("(append)", "(update)", "(edit)", "(modify)") and creates:
            reads.append(creates.pop())  # an existing file the step changes: an input
            continue
        word = raw.strip("`*'\"()").rstrip(".;:")
        if word in ("/read-only", "/read"):
            target = reads
        elif word in ("/add", "/code", "/edit"):
            target = creates
        elif _listed_path(word):
            target.append(word.removeprefix("./"))
    creates, reads = with_dirs(creates), with_dirs(reads)
    creates = [p for p in creates if "/" in p.rstrip("/")]  # a bare `db.py`: where is it?
    reads = [p for p in reads if "/" in p.rstrip("/")]
    return (creates, reads) if creates or reads else None


def _listed_path(word: str) -> bool:
    """A word of a `Files:` line that is a path: `a/b.py`, `b.py`, `docs/src/`, not `final/`."""
    if not is_path(word, strict=False) or (word.startswith(".") and "/" not in word):
        return word.startswith(".") and word.count(".") > 1 and is_path(word, strict=False)
    return bool(EXTENSION.search(word)) or (word.endswith("/") and "/" in word.rstrip("/"))


def snippet_path(code: str) -> str | None:
    """The file a code snippet is, from a first line like `# src/app/main.py`."""
    first = code.lstrip("\n").split("\n", 1)[0]
    m = _SNIPPET_PATH.match(first)
    if m and is_path(m.group("path"), strict=True):
        return m.group("path").removeprefix("./")
    return None


def first_inline(item: SyntaxTreeNode) -> SyntaxTreeNode | None:
    for child in item.children:
        if child.type == "paragraph" and child.children:
            return child.children[0]
    return None


def item_lines(item: SyntaxTreeNode, depth: int) -> list[str]:
    """Everything under a list item but its first paragraph, as indented bullets."""
    lines: list[str] = []
    first = True
    for child in item.children:
        if child.type == "paragraph":
            if not first:
                lines.append("  " * depth + inline(child.children[0]))
            first = False
        elif child.type in ("bullet_list", "ordered_list"):
            for sub in child.children:
                head = first_inline(sub)
                lines.append("  " * depth + "- " + (inline(head) if head else ""))
                lines.extend(item_lines(sub, depth + 1))
        elif child.type in ("fence", "code_block"):
            lines.extend(["```", *child.content.rstrip("\n").split("\n"), "```"])
    return lines


def sections(root: SyntaxTreeNode, source_lines: list[str]) -> list[Section]:
    """Headings with the blocks under them (fences included: a snippet can name its file)."""
    found: list[Section] = []
    for block in root.children:
        if block.type == "heading":
            line = (block.map[0] + 1) if block.map else 0
            title = inline(block.children[0], ticks=False).strip() if block.children else ""
            found.append(Section(int(block.tag[1:]), title, line, []))
        elif found and block.type != "html_block":
            found[-1].blocks.append(block)
    for i, section in enumerate(found):
        end = found[i + 1].line - 1 if i + 1 < len(found) else len(source_lines)
        section.raw = "\n".join(source_lines[section.line : end]).strip("\n")
    return found


def line_of(node: SyntaxTreeNode, default: int = 0) -> int:
    return (node.map[0] + 1) if node.map else default


def task_from(item: SyntaxTreeNode, section: str | None, rule: str) -> Task:
    head = first_inline(item)
    name = _CHECKBOX.sub("", inline(head, ticks=False).strip()) if head else ""
    name = name.split("\n", 1)[0]
    name = re.split(r"\s+[-\u2013\u2014]\s+", name, maxsplit=1)[0].strip().rstrip(":;,.")
    lines = item_lines(item, 0)
    full = " ".join([inline(head) if head else "", *lines])
    paths = paths_in(item)
    task = Task(name or "Task", lines, paths, words_of(full), section, line_of(item), rule)
    task.text = full
    task.done = is_ticked(item)
    return task


def deliverable_from(item: SyntaxTreeNode, rule: str, labelled: bool) -> Deliverable:
    head = first_inline(item)
    text = _CHECKBOX.sub("", inline(head).strip()) if head else ""
    text = text.replace("\n", " ")
    paths = [s.removeprefix("./") for s in _code_spans(head) if is_path(s, strict=False)]
    plain = inline(head, ticks=False).strip() if head else ""
    lead = _CHECKBOX.sub("", plain).split(" ", 1)[0].rstrip(":,")
    if labelled and not paths and is_path(lead, strict=False) and re.search(r"[/.]", lead):
        paths = [lead.removeprefix("./")]  # `- tools/x.py - Scanner` in a `Files Created:` list
    paths += [p for p in paths_in_text(_without_spans(head)) if p not in paths]
    # a command in a deliverable says how to check it, not what it is about
    about = re.sub(r"`[^`]*\s[^`]*`", " ", text)
    edit = bool(EDIT.match(_CHECKBOX.sub("", plain)))
    found = Deliverable(text, with_dirs(paths), edit, words_of(about), line_of(item), rule)
    found.done = is_ticked(item)
    return found


def is_ticked(item: SyntaxTreeNode) -> bool:
    """`- [x] ...`: an item the plan marks done."""
    head = first_inline(item)
    return bool(head is not None and re.match(r"^\[[xX]\]\s+", head.content))


def is_checkbox(item: SyntaxTreeNode) -> bool:
    head = first_inline(item)
    return bool(head is not None and _CHECKBOX.match(head.content))


def list_label(blocks: list[SyntaxTreeNode], index: int) -> str | None:
    """The label a list has: the paragraph just before it when that ends with ':' or is short
    (`Deliverables`, `**Files Created:**`, `Tasks`)."""
    if index == 0 or blocks[index - 1].type != "paragraph" or not blocks[index - 1].children:
        return None
    text = inline(blocks[index - 1].children[0], ticks=False).strip()
    last = text.split("\n")[-1].strip().strip("*").strip()
    if last.endswith(":") or (len(last.split()) <= 4 and role_of(last)):
        return last.rstrip(":").strip("*").strip()
    return None
