"""``fairensemble init table|images|adult|celeba|chexpert``: write a commented config for your
data."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from fairensemble.cli.console import fail, out, user_errors
from fairensemble.common.errors import ConfigError
from fairensemble.common.files import atomic_write_bytes
from fairensemble.config import load_config

if TYPE_CHECKING:  # the data stack (pandas, the loaders) loads only when init runs
    from fairensemble.advice.scaffold import Proposal

init_app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Write a ready-to-run, commented config for your own data: counts its groups and "
         "classes, picks the group to sweep and the largest train size every mix can draw.",
)

OUT_HELP = "Config file to write (default: <name>.yaml in the current directory)."
FORCE_HELP = "Overwrite --out if it exists."


GROUP_HELP = ("Column holding the demographic group; repeat it for intersectional groups "
              "(--group race --group sex: every combination is a group).")
ANNOTATION_HELP = ("Column holding one rater's label (the target's values; missing where that "
                   "rater did not label the row); repeat it once per rater. Without --target the "
                   "label is their majority; either way the report measures how often raters "
                   "disagree per group and the error floor that implies.")
TARGET_HELP = "Column holding the class label (optional with --annotation: their majority)."
HEADER_HELP = ("Whether line 1 of a text table names the columns: auto (sniffed), first, or "
               "none (columns are then numbered 1..N, as dataset documentation numbers them).")


def _header(value: str) -> bool | None:
    choices = {"auto": None, "first": True, "none": False}
    if value not in choices:
        raise typer.BadParameter(f"expected auto, first or none, got {value!r}")
    return choices[value]


def _named_files(values: list[str] | None) -> dict[str, str]:
    """``--vectors NAME=PATH`` (repeatable) as {NAME: PATH}; one line for a malformed one."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, file = value.partition("=")
        if not sep or not name.strip() or not file.strip():
            raise ConfigError(f"--vectors: expected NAME=PATH.npy, got {value!r}")
        if name.strip() in out:
            raise ConfigError(f"--vectors: {name.strip()!r} given twice")
        out[name.strip()] = file.strip()
    return out


def _repeat(flag: str, values: list[str] | None) -> list[str]:
    return [x for v in values or [] for x in (flag, v)]


@init_app.command("table")
def table(
    path: Path = typer.Argument(..., help="A table: CSV/TSV/text (optionally compressed), "
                                          "Parquet, or a folder of Parquet shards."),
    target: str | None = typer.Option(None, "--target", help=TARGET_HELP),
    group: list[str] = typer.Option(..., "--group", help=GROUP_HELP),
    annotation: list[str] | None = typer.Option(None, "--annotation", help=ANNOTATION_HELP),
    positive: str | None = typer.Option(
        None, "--positive", help="Positive class: makes the target binary (this vs the rest). "
                                 "Default: the rarer value of a two-valued target."),
    ratio_group: str | None = typer.Option(
        None, "--ratio-group", help="Group whose share is swept (default: the smallest; with "
                                    "several group columns a value of the first one)."),
    header: str = typer.Option("auto", "--header", help=HEADER_HELP),
    vectors: list[str] | None = typer.Option(
        None, "--vectors", help="NAME=PATH.npy: an [n_rows, d] matrix whose row i belongs to the "
                                "table's row i, a block of features named NAME; repeatable. "
                                "(Parquet/Arrow list and tensor columns need no flag.)"),
    drop: list[str] | None = typer.Option(
        None, "--drop", help="A column that is not a feature; repeatable."),
    out_file: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Propose a config for a table (one row per sample). List and tensor columns (embeddings
    in Parquet or Arrow) are vector features."""
    args = ["table", str(path), *(["--target", target] if target is not None else []),
            *_repeat("--group", group), *_repeat("--annotation", annotation)]
    args += ["--positive", positive] if positive is not None else []
    args += ["--ratio-group", ratio_group] if ratio_group is not None else []
    args += ["--header", header] if header != "auto" else []
    args += [*_repeat("--vectors", vectors), *_repeat("--drop", drop)]
    _write(lambda s: s.propose_table(path, target, group, positive, ratio_group,
                                     _header(header), _named_files(vectors), drop,
                                     list(annotation or [])),
           out_file, force, args)


LAYOUT_HELP = (
    "For a FOLDER of images without a table: a pattern naming the parts of each image's path "
    "under it (extension left out). {name} is a field (no '/' and none of its level's "
    "separators such as _ or -), * matches the rest, the rest is literal: '{label}/*' "
    "(ImageFolder: labels in sub-folder names), '{race}/{gender}/*', '{age}_{gender}_{race}_*' "
    "(UTKFace file names). The table read this way goes beside the config (<name>.images.csv) "
    "and the config reads it.")


@init_app.command("images")
def images(
    path: Path = typer.Argument(..., help="The table with one image per row (CSV/TSV/text, "
                                          "Parquet, or a folder of Parquet shards), or with "
                                          "--layout a folder of images."),
    image: str | None = typer.Option(
        None, "--image", help="Column holding each row's image: a path, a file name or id "
                              "found under --root, or the encoded image (tables only)."),
    layout: str | None = typer.Option(None, "--layout", help=LAYOUT_HELP),
    target: str | None = typer.Option(None, "--target", help=TARGET_HELP + " With --layout: "
                                      "a field of the pattern."),
    group: list[str] = typer.Option(..., "--group", help=GROUP_HELP),
    annotation: list[str] | None = typer.Option(None, "--annotation", help=ANNOTATION_HELP),
    root: list[str] | None = typer.Option(
        None, "--root", help="Folder searched for image names, in order; repeatable (default: "
                             "the table's folder; relative to it)."),
    suffix: str | None = typer.Option(
        None, "--suffix", help="Extension appended to names without one, e.g. .jpg (default: "
                               "found by looking the first names up)."),
    subject: str | None = typer.Option(
        None, "--subject", help="Column (or field) naming the subject (patient, lesion, "
                                "person): all its rows land in one split."),
    split: str | None = typer.Option(
        None, "--split", help="Column (or field, such as a {split} folder level) whose values "
                              "train / val / test fix the splits."),
    positive: str | None = typer.Option(
        None, "--positive", help="Positive class: makes the target binary (this vs the rest)."),
    ratio_group: str | None = typer.Option(
        None, "--ratio-group", help="Group whose share is swept (default: the smallest)."),
    header: str = typer.Option("auto", "--header", help=HEADER_HELP),
    skip_unreadable: bool = typer.Option(
        False, "--skip-unreadable", help="Propose dataset.skip_unreadable: true: images that "
                                         "cannot be decoded are left out with a warning (by "
                                         "default `run` stops and lists them all). init then "
                                         "decodes every image once, so that the proposal "
                                         "counts only readable ones; `run` reuses them."),
    out_file: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite --out, and with --layout the "
                                                      "files beside it, if they exist."),
) -> None:
    """Propose a config for your own images: a table plus image folders (or images inside
    the table, as Hugging Face Parquet holds them), or a folder of images whose paths hold
    the labels (--layout). Counts groups and classes, checks every image is there, reads the
    sizes, and sizes a sweep a 2-core CPU runs in minutes."""
    args = ["images", str(path)]
    args += ["--image", image] if image is not None else []
    args += ["--layout", layout] if layout is not None else []
    args += [*(["--target", target] if target is not None else []), *_repeat("--group", group),
             *_repeat("--annotation", annotation), *_repeat("--root", root)]
    for flag, value in (("--suffix", suffix), ("--subject", subject), ("--split", split),
                        ("--positive", positive), ("--ratio-group", ratio_group)):
        args += [flag, value] if value is not None else []
    args += ["--header", header] if header != "auto" else []
    args += ["--skip-unreadable"] if skip_unreadable else []

    def propose(s) -> Proposal:
        if layout is not None:
            _check_layout_flags(path, image, root, suffix, header)
            return s.propose_image_folder(path, layout, target, group, subject, positive,
                                          ratio_group, split, skip_unreadable,
                                          list(annotation or []))
        if path.is_dir() and not any(path.glob("*.parquet")):
            raise ConfigError(f"{'--image' if image else '--layout'}: {path} is a folder "
                              "without a table (no *.parquet shards); for a folder of images, "
                              "name the parts of each image's path with --layout, e.g. "
                              "--layout '{label}/*'")
        if image is None:
            raise ConfigError("--image: expected the column holding each row's image (or, for "
                              "a folder of images without a table, --layout)")
        return s.propose_images(path, image, target, group, list(root or []), suffix, subject,
                                positive, ratio_group, split, _header(header), skip_unreadable,
                                list(annotation or []))

    _write(propose, out_file, force, args)


def _check_layout_flags(path: Path, image: str | None, root: list[str] | None,
                        suffix: str | None, header: str) -> None:
    """--layout reads a folder of images: the flags that describe a table do not apply."""
    if path.is_file():
        raise ConfigError(f"--layout: {path} is a file; --layout reads a folder of images (for "
                          "a table, name its image column with --image)")
    for flag, given in (("--image", image is not None), ("--root", bool(root)),
                        ("--suffix", suffix is not None), ("--header", header != "auto")):
        if given:
            raise ConfigError(f"{flag}: not used with --layout, which reads the folder itself "
                              "(the inferred table's image column holds each path under it)")


@init_app.command("text")
def text(
    path: Path = typer.Argument(..., help="A table with one text per row: CSV/TSV/text "
                                          "(optionally compressed), Parquet, or a folder of "
                                          "Parquet shards."),
    text_column: str = typer.Option(..., "--text", help="Column holding each row's text."),
    target: str | None = typer.Option(None, "--target", help=TARGET_HELP),
    group: list[str] = typer.Option(..., "--group", help=GROUP_HELP),
    annotation: list[str] | None = typer.Option(None, "--annotation", help=ANNOTATION_HELP),
    positive: str | None = typer.Option(
        None, "--positive", help="Positive class: makes the target binary (this vs the rest). "
                                 "Default: the rarer value of a two-valued target."),
    subject: str | None = typer.Option(
        None, "--subject", help="Column naming the subject (an author, a thread): all its "
                                "rows land in one split."),
    split: str | None = typer.Option(
        None, "--split", help="Column whose values train / val / test fix the splits."),
    ratio_group: str | None = typer.Option(
        None, "--ratio-group", help="Group whose share is swept (default: the smallest)."),
    header: str = typer.Option("auto", "--header", help=HEADER_HELP),
    out_file: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Propose a config for texts: a table with a text column. Counts groups and classes,
    reads the texts' lengths, and sizes a sweep of hashed n-gram bags (fastText-style) a
    2-core CPU runs in minutes."""
    args = ["text", str(path), "--text", text_column,
            *(["--target", target] if target is not None else []),
            *_repeat("--group", group), *_repeat("--annotation", annotation)]
    for flag, value in (("--positive", positive), ("--subject", subject), ("--split", split),
                        ("--ratio-group", ratio_group)):
        args += [flag, value] if value is not None else []
    args += ["--header", header] if header != "auto" else []
    _write(lambda s: s.propose_text(path, text_column, target, group, positive, ratio_group,
                                    _header(header), subject, split, list(annotation or [])),
           out_file, force, args)


@init_app.command("adult")
def adult(
    root: Path | None = typer.Argument(
        None, help="Folder holding adult.data and adult.test (default: the copy bundled with "
                   "fairensemble)."),
    group: str = typer.Option("sex", "--group", help="sex or race."),
    ratio_group: str | None = typer.Option(
        None, "--ratio-group", help="Group whose share is swept (default: the smallest)."),
    out_file: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Propose a config for UCI Adult (income > 50K)."""
    args = ["adult", *([str(root)] if root is not None else []), "--group", group]
    args += ["--ratio-group", ratio_group] if ratio_group is not None else []

    def propose(s) -> Proposal:
        if group not in ("sex", "race"):
            raise ConfigError(f"--group: expected sex or race, got {group!r}")
        return s.propose_adult(root, group, ratio_group)

    _write(propose, out_file, force, args)


@init_app.command("celeba")
def celeba(
    root: Path = typer.Argument(..., help="CelebA folder (list_attr_celeba.txt, "
                                          "list_eval_partition.txt, img_align_celeba/)."),
    target: str = typer.Option("Blond_Hair", "--target", help="Attribute to predict."),
    out_file: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Propose a config for CelebA (groups by Male), reading only its label files."""
    _write(lambda s: s.propose_celeba(root, target), out_file, force,
           ["celeba", str(root), "--target", target])


@init_app.command("chexpert")
def chexpert(
    root: Path = typer.Argument(..., help="CheXpert-v1.0(-small) folder (train.csv, valid.csv)."),
    target: str = typer.Option("Lung Opacity", "--target", help="Finding to predict."),
    out_file: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Propose a config for CheXpert (groups by Sex), reading only its CSVs."""
    _write(lambda s: s.propose_chexpert(root, target), out_file, force,
           ["chexpert", str(root), "--target", target])


def _write(propose: Callable, out_file: Path | None, force: bool, args: list[str]) -> None:
    """Propose (``propose(scaffold)``), write the YAML, read it back as `run` will, print."""
    from fairensemble.advice import scaffold  # the data stack loads only when init runs

    with user_errors():
        if out_file is not None and out_file.exists() and not force:
            fail(f"{out_file}: already exists; pass --force to overwrite it")
        proposal = propose(scaffold)
        path = out_file or Path(f"{proposal.name}.yaml")
        if path.exists() and not force:
            fail(f"{path}: already exists; pass --force to overwrite it, or choose --out")
        if path.is_dir():
            fail(f"{path}: is a folder; --out expects a file name")
        beside = scaffold.place(proposal, path)  # the inferred table of a folder of images
        for other in beside:
            if other.exists() and not force:
                fail(f"{other}: already exists (it goes with {path.name}); pass --force to "
                     "overwrite it, or choose --out")
        shown = str(path)
        text = scaffold.render_yaml(proposal, shown, shlex.join(["fairensemble", "init", *args]))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for other, data in beside.items():
                if data is None:
                    other.unlink(missing_ok=True)  # left by an earlier init: now nothing to list
                else:
                    atomic_write_bytes(other, data)
            path.write_text(text)
        except OSError as err:
            fail(f"{err.filename or path}: cannot be written "
                 f"({err.strerror or type(err).__name__})")
        load_config(path)  # what `run` will read back
        _print_summary(proposal, shown)


def _print_summary(p: Proposal, path: str) -> None:
    for fact in p.facts:
        out.print(escape(fact), soft_wrap=True)
    for title, counts in (("rows by group and class (all splits)", p.counts),
                          ("pool: what training sets are drawn from", p.pool)):
        out.print(title, highlight=False)
        table = Table()
        table.add_column("group")
        for name in [*counts.classes, "total"]:
            table.add_column(escape(str(name)), justify="right")
        for grp, row in zip(counts.groups, counts.n):
            table.add_row(escape(grp), *(f"{v:,}" for v in row), f"{row.sum():,}")
        out.print(table)
    for note in p.notes:
        style = "yellow" if note.startswith("warning") else ""
        out.print(f"[{style}]- {escape(note)}[/]" if style else f"- {escape(note)}",
                  soft_wrap=True)
    out.print(f"wrote [bold]{escape(path)}[/]; next:", highlight=False)
    out.print(f"  {escape(p.run_command(path))}", highlight=False, soft_wrap=True)
    cpu = p.cpu_command(path)
    if cpu:
        out.print("a GPU is expected; to try it on a CPU first:", highlight=False)
        out.print(f"  {escape(cpu)}", highlight=False, soft_wrap=True)
