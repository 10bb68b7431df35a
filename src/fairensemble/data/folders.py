"""Image folders without a table: a layout pattern names the parts of each image's path, and
``scan_folder`` turns the folder into a table with one row per image (its path relative to
the folder and every named part). ``init images FOLDER --layout PATTERN`` writes that table
beside the config it proposes, so ``run`` reads a table (``kind: images``) and never scans the
folder again.

The pattern is matched against each image's path relative to the folder, with '/' between
folder levels and without the file's extension:

* ``{name}`` is a field: one or more characters, none of them '/' or a separator of its
  level (the level's literal characters other than letters and digits: ``_`` in
  ``{age}_{gender}_{race}_*``), so a field never swallows a neighbour and a name with a field
  too many or too few does not fit;
* ``*`` matches anything within its level, possibly nothing; a last level that is only ``*``
  matches the rest of the path, deeper folders included (``{label}/*`` takes ``cat/a.png``
  and ``cat/sub/b.png``, as torchvision's ImageFolder does);
* anything else is literal and must be there as written (``_``, ``-``, ``/``, ``img_``);
* a pattern that ends in an image extension (``{label}/*.png``) takes only files with that
  extension (case aside).

Field names are letters, digits and ``_`` (not starting with a digit); two fields, or a field
and a ``*``, need a literal between them (``{a}{b}`` could split anywhere). Only image files
(``IMAGE_EXTENSIONS``) are considered; hidden files and folders (a name starting with '.':
``.DS_Store``, ``._x.jpg``, ``.ipynb_checkpoints/``) are skipped. A name that does not fit is
counted and listed with the reason (its number of levels, of fields, an empty field), never
guessed at. Rows are in the order of their paths.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fairensemble.common.errors import ConfigError, DataError
from fairensemble.data.images import IMAGE_EXTENSIONS

if TYPE_CHECKING:
    import pandas as pd

FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IMAGE_COLUMNS = ("image", "image_path", "image_file")  # the path column: the first free name
SHOWN = 3  # names that do not fit shown in a line


@dataclass(frozen=True)
class Token:
    kind: str  # "field", "star" or "literal"
    text: str  # the field's name, or the literal text


@dataclass(frozen=True)
class Level:
    """One folder level of a pattern: its tokens and the regular expression they make."""

    text: str
    tokens: tuple[Token, ...]
    separators: str  # literal characters other than letters and digits
    regex: re.Pattern
    spans: bool  # ends the pattern with '*': takes the rest of the path

    def why_not(self, value: str) -> str:
        """Why ``value`` does not fit this level (it does not match ``regex``)."""
        if self.separators:
            pieces = re.split(f"[{re.escape(self.separators)}]", value)
            shape = "".join("F" if t.kind == "field" else "S" if t.kind == "star" else t.text
                            for t in self.tokens)
            wanted = re.split(f"[{re.escape(self.separators)}]", shape)
            star = any(t.kind == "star" for t in self.tokens)
            seps = " or ".join(repr(s) for s in self.separators)
            if len(pieces) < len(wanted) or (len(pieces) > len(wanted) and not star):
                return (f"{_count(len(pieces), 'part')} between {seps}, the layout has "
                        f"{'at least ' if star else ''}{len(wanted)}")
            fields = [i for i, w in enumerate(wanted) if "F" in w]
            if any(pieces[i] == "" for i in fields if i < len(pieces)):
                return "an empty field"
        return f"{value!r} does not fit {self.text!r}"


@dataclass(frozen=True)
class FolderLayout:
    """A parsed layout pattern (see the module docstring)."""

    pattern: str
    levels: tuple[Level, ...]
    fields: tuple[str, ...]
    extension: str | None  # the only extension taken, when the pattern ends in one
    regex: re.Pattern

    def match(self, relative: str) -> dict[str, str] | None:
        """The fields of an image's relative path (posix, with its extension), or None."""
        stem = _without_extension(relative)
        if self.extension and Path(relative).suffix.lower() != self.extension:
            return None
        m = self.regex.fullmatch(stem)
        return None if m is None else m.groupdict()

    def why_not(self, relative: str) -> str:
        """Why ``relative`` does not fit (``match`` gave None)."""
        suffix = Path(relative).suffix.lower()
        if self.extension and suffix != self.extension:
            return f"extension {suffix}, the layout takes {self.extension}"
        parts = _without_extension(relative).split("/")
        n = len(self.levels)
        spans = self.levels[-1].spans
        if len(parts) < n or (len(parts) > n and not spans):
            return (f"{_count(len(parts), 'path level')}, the layout has "
                    f"{'at least ' if spans else ''}{n}")
        for k, level in enumerate(self.levels):
            value = "/".join(parts[k:]) if k == n - 1 else parts[k]
            if not level.regex.fullmatch(value):
                return level.why_not(value)
        return "does not fit"  # pragma: no cover - match and why_not agree level by level

    def expects(self) -> str:
        """What a fitting path looks like, in words."""
        shape = re.sub(r"\{([^{}]*)\}", r"<\1>", self.pattern)
        levels = (f"{'at least ' if self.levels[-1].spans else ''}"
                  f"{_count(len(self.levels), 'path level')}")
        seps = sorted({c for lvl in self.levels for c in lvl.separators})
        hold = "'/'" + "".join(f" or {c!r}" for c in seps)
        return f"{shape} ({levels}; a field holds no {hold} and is never empty)"


def parse_layout(pattern: str, where: str = "--layout") -> FolderLayout:
    """The layout of ``pattern``; a malformed one is a ``ConfigError`` naming ``where``."""
    text = pattern.strip()

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{where}: {why}, got {pattern!r} (e.g. '{{label}}/*' or "
                           "'{age}_{gender}_*')")

    if not text:
        raise bad("expected a pattern naming the parts of each image's path")
    if text.startswith("/"):
        raise bad("expected a path relative to the folder (no leading '/')")
    extension = next((e for e in IMAGE_EXTENSIONS if text.lower().endswith(e)), None)
    if extension is not None:
        text = text[: -len(extension)]
    raw_levels = text.split("/")
    if any(not lvl for lvl in raw_levels):
        raise bad("an empty folder level ('//' or a trailing '/')")
    parsed = [_tokens(lvl, bad) for lvl in raw_levels]
    names = [t.text for tokens in parsed for t in tokens if t.kind == "field"]
    if not names:
        raise bad("expected at least one {field}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise bad(f"field {dupes[0]!r} appears twice")
    levels = []
    for i, (raw, tokens) in enumerate(zip(raw_levels, parsed)):
        last = i == len(parsed) - 1
        spans = last and [t.kind for t in tokens] == ["star"]
        separators = "".join(dict.fromkeys(c for t in tokens if t.kind == "literal"
                                           for c in t.text if not c.isalnum()))
        excluded = re.escape("/" + separators)
        parts = []
        for j, t in enumerate(tokens):
            if t.kind == "field":
                parts.append(f"(?P<{t.text}>[^{excluded}]+)")
            elif t.kind == "star":
                parts.append(".*" if spans and j == len(tokens) - 1 else "[^/]*")
            else:
                parts.append(re.escape(t.text))
        levels.append(Level(raw, tuple(tokens), separators, re.compile("".join(parts), re.S),
                            spans))
    regex = re.compile("/".join(lvl.regex.pattern for lvl in levels), re.S)
    return FolderLayout(pattern.strip(), tuple(levels), tuple(names), extension, regex)


def _tokens(level: str, bad) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(level):
        c = level[i]
        if c == "{":
            end = level.find("}", i)
            if end < 0:
                raise bad("a '{' without its '}'")
            name = level[i + 1:end]
            if not FIELD_NAME.fullmatch(name):
                raise bad(f"field names are letters, digits and _ ({{{name}}} is not one)")
            tokens.append(Token("field", name))
            i = end + 1
            continue
        if c == "}":
            raise bad("a '}' without its '{'")
        if c == "*":
            if not (tokens and tokens[-1].kind == "star"):
                tokens.append(Token("star", "*"))
        elif tokens and tokens[-1].kind == "literal":
            tokens[-1] = Token("literal", tokens[-1].text + c)
        else:
            tokens.append(Token("literal", c))
        i += 1
    for a, b in zip(tokens, tokens[1:]):
        if "literal" not in (a.kind, b.kind):
            raise bad("two fields, or a field and '*', need a literal such as _ between them")
    return tokens


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _without_extension(relative: str) -> str:
    suffix = Path(relative).suffix
    return relative[: -len(suffix)] if suffix else relative


# ----------------------------------------------------------------------------- scanning


@dataclass
class FolderScan:
    """A folder read through a layout: ``frame`` (text columns: ``image_column``, the path
    relative to the folder, then the fields), the images that do not fit with the reason, and
    what was skipped."""

    folder: Path
    layout: FolderLayout
    frame: pd.DataFrame
    image_column: str
    unfit: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)
    hidden: list[str] = field(default_factory=list)  # hidden files and folders skipped
    other: list[str] = field(default_factory=list)  # files that are not images

    @property
    def n_images(self) -> int:
        return len(self.frame) + len(self.unfit)

    def unfit_text(self) -> str:
        """Every image that does not fit, one per line: its path, a tab, the reason."""
        head = (f"# {len(self.unfit)} of {self.n_images} images under {self.folder} do not fit "
                f"the layout {self.layout.pattern!r}: path<TAB>why\n")
        return head + "".join(f"{p}\t{why}\n" for p, why in self.unfit)


def scan_folder(folder: str | Path, layout: FolderLayout) -> FolderScan:
    """Every image under ``folder`` through ``layout`` (see the module docstring). No image
    file, or none that fits, is a ``DataError`` line naming the folder."""
    import pandas as pd

    root = Path(os.path.abspath(Path(folder).expanduser()))
    if not root.is_dir():
        raise DataError(f"{root}: folder not found" if not root.exists() else
                        f"{root}: not a folder; --layout reads a folder of images")
    images, hidden, other = _walk(root)
    if not images:
        skipped = _skipped(hidden, other)
        raise DataError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it or its "
                        f"subfolders{skipped}")
    rows: list[tuple[str, dict[str, str]]] = []
    unfit: list[tuple[str, str]] = []
    for rel in images:
        values = layout.match(rel)
        if values is None:
            unfit.append((rel, layout.why_not(rel)))
        else:
            rows.append((rel, values))
    if not rows:
        raise DataError(f"{root}: none of its {len(images):,} images fit --layout "
                        f"{layout.pattern!r}, which expects {layout.expects()}; it saw "
                        f"{examples(unfit)}")
    column = next(c for c in IMAGE_COLUMNS if c not in layout.fields)
    frame = pd.DataFrame({column: [rel for rel, _ in rows],
                          **{f: [values[f] for _, values in rows] for f in layout.fields}},
                         dtype=object)
    return FolderScan(root, layout, frame, column, unfit, hidden, other)


def examples(unfit: list[tuple[str, str]], n: int = SHOWN) -> str:
    """A few names that do not fit, with why: different reasons first."""
    first = list({why: (p, why) for p, why in reversed(unfit)}.values())[::-1][:n]
    chosen = sorted(first + [u for u in unfit if u not in first][: n - len(first)])
    more = f" and {len(unfit) - len(chosen):,} more" if len(unfit) > len(chosen) else ""
    return ", ".join(f"{p!r} ({why})" for p, why in chosen) + more


def _walk(root: Path) -> tuple[list[str], list[str], list[str]]:
    """Relative posix paths of the image files, the hidden entries and the other files
    under ``root`` (symbolic links followed, each folder once), sorted."""
    images, hidden, other = [], [], []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        rel = Path(dirpath).relative_to(root)
        hidden += [(rel / d).as_posix() + "/" for d in dirnames if d.startswith(".")]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = (rel / name).as_posix()
            if name.startswith("."):
                hidden.append(path)
            elif Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                images.append(path)
            else:
                other.append(path)
    return sorted(images), sorted(hidden), sorted(other)


def _skipped(hidden: list[str], other: list[str]) -> str:
    parts = []
    if other:
        parts.append(f"{len(other):,} other file{'s' if len(other) > 1 else ''} (e.g. "
                     f"{other[0]!r})")
    if hidden:
        parts.append(f"{len(hidden):,} hidden (e.g. {hidden[0]!r})")
    return f"; skipped {' and '.join(parts)}" if parts else ""


def skipped_line(scan: FolderScan) -> str:
    """What the scan skipped, in words ("" when nothing)."""
    return _skipped(scan.hidden, scan.other).removeprefix("; skipped ")


# ----------------------------------------------------------------------------- the table


def table_bytes(frame: pd.DataFrame) -> tuple[str, bytes]:
    """``frame`` (text cells) as the file ``run`` will read: (".csv", CSV) when the table
    reader reads every cell back as written, else (".parquet", Parquet), which keeps text as
    text (a CSV turns '007' into 7 and 'NA' into a missing value)."""
    from fairensemble.data.frame import as_text
    from fairensemble.data.reader import read_table

    data = frame.to_csv(index=False).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        path.write_bytes(data)
        try:
            back = read_table(path)
        except DataError:
            back = None
    if back is not None and list(back.columns) == list(frame.columns) and all(
            as_text(back[c]).tolist() == frame[c].tolist() for c in frame.columns):
        return ".csv", data
    buf = io.BytesIO()
    frame.astype(str).to_parquet(buf, index=False)
    return ".parquet", buf.getvalue()


__all__ = ["FolderLayout", "FolderScan", "examples", "parse_layout", "scan_folder", "skipped_line",
           "table_bytes"]
