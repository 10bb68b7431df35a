"""Proposals for images: a table of images with folders or encoded bytes (``init images``),
CelebA and CheXpert from their label files; every image found and a CPU-sized try proposed."""

from __future__ import annotations

import glob
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairensemble.advice.scaffold.assemble import _data_seed, _finish
from fairensemble.advice.scaffold.decide import (
    CPU_IMAGE_SIZE,
    SIZE_SAMPLE,
    TEST_FRACTION,
    VAL_FRACTION,
    Counts,
    Proposal,
    require_column,
    slug,
)
from fairensemble.advice.scaffold.raters import check_annotations, label_words, rater_notes
from fairensemble.advice.scaffold.tables import (
    _group_comment,
    _group_comments,
    _group_list,
    _plan_groups_and_markers,
    _positive,
    _require_ratio_group,
    _require_values,
    _sniffed_header,
)
from fairensemble.common.errors import ConfigError, DataError, DataWarning
from fairensemble.common.text import close_matches, preview_names
from fairensemble.data.celeba import CelebAData
from fairensemble.data.chexpert import CheXpertData
from fairensemble.data.images import Rows

# ----------------------------------------------------------------------------- images


def propose_celeba(root: str | Path, target: str = "Blond_Hair") -> Proposal:
    """A ``kind: celeba`` config from CelebA's two label files (no image is opened)."""
    from fairensemble.data import celeba

    root = Path(root).expanduser()
    attr = root / celeba.ATTR_FILE
    if attr.is_file():
        with attr.open() as fh:
            fh.readline()
            names = fh.readline().split()
        if names and target not in names:
            raise DataError(f"{attr}: unknown attribute {target!r} (--target)"
                            f"{close_matches(target, names)} ({len(names)} in all)")
    cfg = CelebAData(root=str(root.resolve()), target=target, image_size=224, num_workers=8,
                     hflip=True)
    table = celeba.read_table(cfg)
    rows = _rows(table, celeba.as_images(cfg), str(root / celeba.ATTR_FILE))
    notes = [f"target {target!r} (-1/1 in {celeba.ATTR_FILE}): {target!r} is the positive class",
             "groups: Male -1 -> female, 1 -> male"]
    facts = [f"{root.resolve()}: {len(table):,} images listed in {celeba.ATTR_FILE}; official "
             f"partition from {celeba.PARTITION_FILE} (train / val / test = pool / val / test)"]
    comments = {
        "dataset.root": "holds img_align_celeba/*.jpg, list_attr_celeba.txt and "
                        "list_eval_partition.txt",
        "dataset.target": "the attribute to predict (1 -> the positive class)",
        "dataset.group": "the attribute that defines the groups (-1 / 1 -> groups[0] / [1])",
        "dataset.hflip": "random horizontal flips while training (faces are symmetric)",
    }
    return _image_proposal(cfg, rows, f"celeba-{slug(target)}", facts, notes, comments)


def propose_chexpert(root: str | Path, target: str = "Lung Opacity") -> Proposal:
    """A ``kind: chexpert`` config from CheXpert's ``train.csv`` / ``valid.csv`` (no image is
    opened)."""
    from fairensemble.data import chexpert

    root = Path(root).expanduser()
    first = root / chexpert.CSV_FILES[0]
    if first.is_file():
        try:
            columns = [str(c) for c in pd.read_csv(first, nrows=0).columns]
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            columns = []
        if columns and target not in columns:
            findings = columns[columns.index("AP/PA") + 1:] if "AP/PA" in columns else columns
            raise DataError(f"{first}: finding {target!r} not found (--target)"
                            f"{close_matches(target, columns)} "
                            f"(findings: {preview_names(findings)})")
    cfg = CheXpertData(root=str(root.resolve()), target=target, image_size=224, num_workers=8)
    table, dropped = chexpert.read_table(cfg)
    rows = _rows(table, chexpert.as_images(cfg), str(first))
    notes = [f"target {target!r}: 1.0 -> positive, 0.0 and blank -> negative, -1.0 (uncertain)"
             f" -> negative (uncertain: zeros)"]
    facts = [f"{root.resolve()}: {len(table) + sum(dropped.values()):,} rows in "
             f"{' + '.join(chexpert.CSV_FILES)}, split by patient into pool / val / test "
             f"({1 - cfg.val_fraction - cfg.test_fraction:.0%} / {cfg.val_fraction:.0%} / "
             f"{cfg.test_fraction:.0%} of patients)"]
    if dropped:
        facts.append("dropped: " + ", ".join(f"{k} ({v:,})" for k, v in dropped.items()))
    comments = {
        "dataset.root": "the published folder: train.csv, valid.csv, train/ and valid/",
        "dataset.target": "the finding to predict",
        "dataset.group": "the column that defines the groups; rows with other values (Unknown)"
                         " are dropped",
        "dataset.uncertain": "what -1.0 (uncertain) becomes: zeros, ones, or drop the row",
        "dataset.frontal_only": "frontal views only (lateral views dropped)",
        "dataset.val_fraction": "shares of patients in val and test (no patient in two splits)",
    }
    return _image_proposal(cfg, rows, f"chexpert-{slug(target)}", facts, notes, comments)


def propose_images(
    path: str | Path, image: str, target: str | None, group: str | list[str],
    roots: list[str] | None = None, suffix: str | None = None, subject: str | None = None,
    positive: str | None = None, ratio_group: str | None = None, split: str | None = None,
    header: bool | None = None, skip_unreadable: bool = False,
    annotations: list[str] | None = None,
) -> Proposal:
    """A ``kind: images`` config for a table with one image per row (no image is decoded;
    a sample is opened to read sizes). ``annotations``: one column per rater (``target``
    None: the label is their majority)."""
    from fairensemble.data.images import search_roots
    from fairensemble.data.reader import read_table

    path = Path(path)
    source = str(path)
    columns_of = _group_list(group)
    frame = read_table(path, header=header)
    columns = [str(c) for c in frame.columns]
    require_column(image, columns, "image", source)
    annotations = check_annotations(frame, target, columns_of, list(annotations or []), source)
    if target is not None:
        require_column(target, columns, "target", source)
    for col in columns_of:
        require_column(col, columns, "group", source)
    for role, col in (("subject", subject), ("split", split)):
        if col is not None:
            require_column(col, columns, role, source)
    notes: list[str] = []
    if suffix is None:
        suffix = guess_suffix(frame[image], search_roots(list(roots or []), path))
        if suffix:
            notes.append(f"image names have no extension; the files are <name>{suffix} "
                         "(dataset.suffix)")
    return _propose_image_table(
        frame, table=path.resolve(), source=source, name=slug(path.name.split(".")[0]),
        image=image, target=target, columns_of=columns_of, roots=list(roots or []),
        suffix=suffix, subject=subject, positive=positive, ratio_group=ratio_group, split=split,
        header=_sniffed_header(path) if header is None else header,
        skip_unreadable=skip_unreadable, notes=notes, facts=[], annotations=annotations)


def propose_image_folder(
    folder: str | Path, layout: str, target: str, group: str | list[str],
    subject: str | None = None, positive: str | None = None, ratio_group: str | None = None,
    split: str | None = None, skip_unreadable: bool = False,
    annotations: list[str] | None = None,
) -> Proposal:
    """A ``kind: images`` config for a folder of images without a table: ``layout`` names the
    parts of each image's path (``data.folders``); the table it infers (one row per image:
    its relative path and every field) goes beside the config (``place``), which reads it.
    ``annotations``: fields holding one rater's label each."""
    from fairensemble.data.folders import examples, parse_layout, scan_folder, table_bytes
    from fairensemble.data.reader import read_table

    lay = parse_layout(layout)
    columns_of = _group_list(group)
    for flag, name in (("--target", target), *(("--group", c) for c in columns_of),
                       ("--subject", subject), ("--split", split),
                       *(("--annotation", c) for c in annotations or [])):
        if name is not None and name not in lay.fields:
            raise ConfigError(f"{flag}: {name!r} is not a field of --layout {lay.pattern!r}"
                              f"{close_matches(name, list(lay.fields))} (fields: "
                              f"{', '.join(lay.fields)})")
    scan = scan_folder(folder, lay)
    suffix, data = table_bytes(scan.frame)
    name = slug(scan.folder.name)
    with tempfile.TemporaryDirectory() as tmp:  # read back as `run` will read it
        written = Path(tmp) / f"{name}{TABLE}{suffix}"
        written.write_bytes(data)
        frame = read_table(written)
    n_unfit = len(scan.unfit)
    try:
        p = _propose_folder_table(scan, frame, suffix, name, target, columns_of, subject,
                                  positive, ratio_group, split, skip_unreadable,
                                  list(annotations or []))
    except DataError as err:
        if n_unfit <= len(frame):
            raise
        # most names do not fit: the layout, more likely than the data, is what is wrong
        raise DataError(f"{err}; note that only {len(frame):,} of {scan.n_images:,} images fit "
                        f"--layout {lay.pattern!r}; it left out {examples(scan.unfit)}"
                        ) from None
    p.beside = {TABLE + suffix: data}
    if n_unfit:
        p.beside[UNFIT] = scan.unfit_text().encode()
    p.table_suffix = TABLE + suffix
    return p


def _propose_folder_table(scan: Any, frame: pd.DataFrame, suffix: str, name: str, target: str,
                          columns_of: list[str], subject: str | None, positive: str | None,
                          ratio_group: str | None, split: str | None, skip_unreadable: bool,
                          annotations: list[str] | None = None) -> Proposal:
    from fairensemble.data.folders import examples, skipped_line

    lay, n_unfit = scan.layout, len(scan.unfit)
    facts = [f"{scan.folder}: {scan.n_images:,} images; {len(frame):,} fit --layout "
             f"{lay.pattern!r} (fields {', '.join(lay.fields)}), {n_unfit:,} do not"
             + (f"; skipped {skipped_line(scan)}" if skipped_line(scan) else ""),
             f"columns of the inferred table: {scan.image_column} (the path under the "
             f"folder), {', '.join(lay.fields)}"]
    notes: list[str] = []
    if n_unfit:
        notes.append(f"warning: {n_unfit:,} of {scan.n_images:,} images do not fit the layout "
                     f"and are left out: {examples(scan.unfit)}; all of them are listed in the "
                     f"{UNFIT} file beside the config")
    if suffix != ".csv":
        notes.append("the inferred table is Parquet, not CSV: some values would not read back "
                     "from CSV as written (a leading zero, or a word such as NA that means "
                     "missing in CSV)")
    return _propose_image_table(
        frame, table=Path(f"{name}{TABLE}{suffix}").resolve(), source=str(scan.folder),
        name=name, image=scan.image_column, target=target, columns_of=columns_of,
        roots=[str(scan.folder)], suffix=None, subject=subject, positive=positive,
        ratio_group=ratio_group, split=split, header=None, skip_unreadable=skip_unreadable,
        notes=notes, facts=facts, layout=lay.pattern,
        annotations=check_annotations(frame, target, columns_of, list(annotations or []),
                                      str(scan.folder)))


TABLE = ".images"  # the inferred table beside the config: <stem>.images.csv (or .parquet)
UNFIT = ".unmatched.txt"  # the images that do not fit the layout, beside the config


def place(p: Proposal, config: Path) -> dict[Path, bytes | None]:
    """The files ``p`` writes beside its config at ``config`` (``<stem><suffix>``), with the
    config's ``dataset.path`` pointed at its table; None marks a file of such a name left by
    an earlier ``init`` that now has no content (to remove). Empty for a proposal that
    writes no such file."""
    if p.table_suffix is None:
        return {}
    config = config.resolve()
    files: dict[Path, bytes | None] = {}
    for suffix in (f"{TABLE}.csv", f"{TABLE}.parquet", UNFIT):
        target = config.with_name(config.stem + suffix)
        if suffix in p.beside or target.exists():
            files[target] = p.beside.get(suffix)
    table = config.with_name(config.stem + p.table_suffix)
    p.config["dataset"]["path"] = str(table)
    p.facts.append(f"wrote {table}: the table inferred from the folder; the config reads it "
                   "(dataset.path), so `run` never scans the folder")
    unfit = config.with_name(config.stem + UNFIT)
    if UNFIT in p.beside:
        p.facts.append(f"wrote {unfit}: every image that does not fit the layout, and why")
    return files


def _propose_image_table(
    frame: pd.DataFrame, *, table: Path, source: str, name: str, image: str, target: str,
    columns_of: list[str], roots: list[str], suffix: str | None, subject: str | None,
    positive: str | None, ratio_group: str | None, split: str | None, header: bool | None,
    skip_unreadable: bool, notes: list[str], facts: list[str], layout: str | None = None,
    annotations: list[str] | None = None,
) -> Proposal:
    """The proposal for an image table ``frame`` (read from ``table``, or to be written there),
    whose columns are checked; ``source`` names it in messages."""
    from fairensemble.data.images import ImagesData, layout_rows

    annotations = list(annotations or [])
    if target is not None and target in columns_of:
        raise DataError(f"{source}: target and group are the same column {target!r}")
    _require_values(frame, target, columns_of, positive, source, annotations)
    base = ImagesData(path=str(table), image=image, roots=roots, suffix=suffix, target=target,
                      annotations=annotations,
                      positive=positive, group=columns_of, subject=subject, split=split,
                      test_fraction=TEST_FRACTION, val_fraction=VAL_FRACTION,
                      image_size=CPU_IMAGE_SIZE, header=header,
                      skip_unreadable=skip_unreadable)
    seed = _data_seed()
    rows0 = layout_rows(frame, base, seed, source, missing_ok=True)
    counts = Counts.of(rows0.y, rows0.g, rows0.groups, rows0.classes)
    _require_ratio_group(ratio_group, counts, columns_of, source, rows0.group_values)
    comments: dict[str, str] = {}
    pos, why = _positive(counts, positive, target, comments, notes)
    expected = (_split_counts(rows0)["test"].n if split is not None
                else counts.n * TEST_FRACTION)
    plan = _plan_groups_and_markers(counts, expected, ratio_group)
    sizes = image_sizes(rows0)
    color = "gray" if sizes["modes"] and all(m in GRAY_MODES for m in sizes["modes"]) else "rgb"
    smallest = min(sizes["min_side"], CPU_IMAGE_SIZE) if sizes["min_side"] else CPU_IMAGE_SIZE
    spec = base.model_copy(update={"positive": pos, "min_group_size": plan.min_group_size,
                                   "groups": plan.groups, "color": color,
                                   "image_size": smallest})
    rows = rows0 if spec == base else layout_rows(frame, spec, seed, source, missing_ok=True)
    missing = rows.found.missing
    read = "table" if layout is None else "inferred table"
    facts = [*facts,
             f"{table if layout is None else read}: {rows.info['rows_read']:,} rows read, "
             f"{rows.info['dropped_missing']:,} dropped (missing "
             f"{repr(target) if target else 'every rater'} or a group value), "
             f"{rows.info['dropped_groups']:,} dropped with their group, "
             f"{rows.info['rows_used']:,} used"]
    if layout is None:
        facts.append(
            f"images: {len(rows.found.sources) - len(missing):,} found, {len(missing):,} not "
            f"found" + (f" (e.g. {', '.join(repr(rows.found.ids[i]) for i in missing[:3])})"
                        if missing else "")
            + f"; looked in {', '.join(str(r) for r in rows.found.roots)}"
            + (f" with suffix {suffix!r}" if suffix else ""))
    facts.append(f"image sizes seen ({sizes['opened']} opened): {sizes['text']}")
    if sizes["failed"] and not skip_unreadable:
        notes.append(f"warning: {sizes['failed']} of the {sizes['tried']} images sampled could "
                     "not be opened; `run` decodes every image first and stops listing all that "
                     "fail (--skip-unreadable leaves them out)")
    if subject is not None:
        n_subjects = len(np.unique(rows.subjects)) if rows.subjects is not None else 0
        facts.append(f"subjects ({subject!r}): {n_subjects:,}; each subject's rows share one "
                     "split")
    if missing:
        notes.append(f"warning: {len(missing):,} images not found; `run` stops naming them "
                     "until they are there (or their rows are removed)")
    elif skip_unreadable:
        rows = _readable_rows(rows, spec, source, facts, notes)
    _require_images_in_splits(rows, source, repr(target) if target is not None
                              else f"({label_words(target)})")
    dataset = spec.model_dump(mode="json")
    order = ["kind", "path", "header", "image", "roots", "suffix", "target", "annotations",
             "positive", "group",
             "groups", "min_group_size", "subject", "split", "test_fraction", "val_fraction",
             "image_size", "color", "fit", "hflip", "cache_dir", "num_workers",
             "skip_unreadable"]
    dataset = {k: dataset[k] for k in order}
    for key, unset in (("header", None), ("positive", None), ("subject", None), ("split", None),
                       ("suffix", None), ("roots", []), ("target", None), ("annotations", [])):
        if dataset[key] == unset:
            dataset.pop(key)
    comments.update({
        "dataset.path": "the table: one row per image" if layout is None else
                        f"the table `init` inferred from the folder's paths (--layout "
                        f"{layout!r}): one row per image; edit it to relabel or leave images "
                        "out",
        "dataset.header": "line 1 is data, not column names: columns are numbered 1..N",
        "dataset.image": "the column naming each row's image (a path, a file name or id looked "
                         "up under `roots`, or the encoded image itself)" if layout is None else
                         "the column holding each image's path, relative to `roots`",
        "dataset.roots": "folders searched in order for each name, relative to the table's "
                         "folder" if layout is None else "the folder of images",
        "dataset.suffix": "appended to names without an image extension",
        "dataset.target": f"the class label ({len(counts.classes)} values in the data"
                          + (")" if pos is not None else f": {why})"),
        "dataset.group": _group_comment(columns_of),
        "dataset.subject": "all rows of one subject land in the same split: no subject is both "
                           "trained and tested on",
        "dataset.split": "this column fixes the splits (train / val / test)",
        "dataset.test_fraction": f"{TEST_FRACTION:.0%} of the rows form the fixed test split, "
                                 "stratified by group x class"
                                 + (", by whole subjects" if subject else ""),
        "dataset.val_fraction": f"{VAL_FRACTION:.0%} of the rows form a validation split: "
                                "post-processing fits group-specific thresholds on it",
        "dataset.image_size": f"images decoded at {spec.image_size} px for a CPU run (224 on a "
                              "GPU)",
        "dataset.color": f"{color}: what the images sampled are"
                         + (" (all grayscale)" if color == "gray" else ""),
        "dataset.fit": "crop: centre-crop to a square before resizing (resize squashes instead)",
        "dataset.hflip": "no random horizontal flips while training (true adds them)",
        "dataset.cache_dir": "decoded images are cached here (null: ~/.cache/fairensemble or "
                             "$FAIRENSEMBLE_CACHE)",
        "dataset.num_workers": "processes decoding images (0: this one)",
        "dataset.skip_unreadable": (
            "true: images that cannot be decoded are left out with a warning counting them per "
            "group (each stays out of the split it was drawn into); false stops the run listing "
            "them all" if skip_unreadable else
            "false: `run` stops on images that cannot be decoded, listing them all in a file; "
            "true leaves them out with a warning"),
    })
    if annotations:
        rater_notes(_RatedRows(rows), annotations, target, comments, facts)
    _group_comments(plan, dataset, comments, notes)
    pool = rows.parts["pool"]
    return _finish(
        kind="images", name=name, dataset=dataset, ds=None,
        counts=counts, requested_rg=ratio_group, facts=facts, notes=notes, comments=comments,
        pool_parts=(rows.y[pool], rows.g[pool]), test=_split_counts(rows)["test"],
        attributes=list(rows.attributes), group_values=list(rows.group_values),
    )


class _RatedRows:
    """An image table's rows as ``rater_notes`` reads a dataset: splits with votes."""

    def __init__(self, rows: Rows) -> None:
        from fairensemble.data.base import Split

        self.groups, self.classes = rows.groups, rows.classes
        self.pool, self.val, self.test = (
            Split(np.zeros(len(i)), rows.y[i], rows.g[i], rows.votes[i])
            for i in (rows.parts["pool"], rows.parts["val"], rows.parts["test"]))


def _readable_rows(rows: Rows, spec: Any, source: str, facts: list[str], notes: list[str]
                   ) -> Rows:
    """``--skip-unreadable``: every used image decoded as `run` will decode it (into the cache
    `run` then reads) and the unreadable ones left out of their splits, so that the proposal
    sizes the sweep on the images `run` trains on."""
    from fairensemble.data.images import decode_rows

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        _, parts, skipped = decode_rows(rows, spec, source)
    said = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    if skipped:
        notes.extend(f"warning: {line}" for line in said)
    else:
        n = sum(len(i) for i in rows.parts.values())
        facts.append(f"every one of the {n:,} images used decodes (--skip-unreadable: all "
                     "decoded now; `run` reads them from the cache)")
    return replace(rows, parts=parts)


GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def guess_suffix(values: pd.Series, roots: list[Path], tries: int = 20) -> str | None:
    """The extension the image names leave out, when they leave one out: the first names
    without an extension are looked up as ``<name>.*`` under the roots; one extension shared
    by every hit is it."""
    from fairensemble.data.images import IMAGE_EXTENSIONS

    found: set[str] = set()
    names = [v.strip() for v in values.head(500) if isinstance(v, str) and v.strip()
             and Path(v.strip()).suffix.lower() not in IMAGE_EXTENSIONS][:tries]
    for name in names:
        for root in roots:
            try:
                hits = [p.suffix for p in root.glob(f"{glob.escape(name)}.*")
                        if p.suffix.lower() in IMAGE_EXTENSIONS]
            except OSError:  # a name the file system cannot hold is no file name
                hits = []
            if hits:
                found.update(hits)
                break
    return found.pop() if len(found) == 1 else None


def image_sizes(rows: Rows) -> dict[str, Any]:
    """Width x height and mode of up to ``SIZE_SAMPLE`` found images (headers only)."""
    import io

    from PIL import Image

    present = [i for i, s in enumerate(rows.found.sources) if s is not None]
    rng = np.random.default_rng(0)
    chosen = sorted(rng.choice(present, size=min(SIZE_SAMPLE, len(present)), replace=False)) \
        if present else []
    dims, modes, failed = [], set(), 0
    for i in chosen:
        src = rows.found.sources[i]
        try:
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                dims.append(im.size)
                modes.add(im.mode)
        except Exception:  # an undecodable file: `run` names it; here it is only counted
            failed += 1
    if not dims:
        return {"opened": 0, "text": "none could be opened", "min_side": None, "modes": [],
                "failed": failed, "tried": len(chosen)}
    common = pd.Series([f"{w}x{h}" for w, h in dims]).value_counts()
    shown = ", ".join(f"{k} ({v})" for k, v in common.head(3).items())
    more = f", {len(common) - 3} other sizes" if len(common) > 3 else ""
    return {"opened": len(dims), "text": f"{shown}{more}; modes {', '.join(sorted(modes))}",
            "min_side": int(min(min(w, h) for w, h in dims)), "modes": sorted(modes),
            "failed": failed, "tried": len(chosen)}


def _rows(table: pd.DataFrame, icfg: Any, source: str) -> Rows:
    """An image table's rows, labelled and split as a run will split them (images are looked
    up, not opened; missing ones are counted, not fatal)."""
    from fairensemble.data.images import layout_rows

    return layout_rows(table, icfg, _data_seed(), source, missing_ok=True)


def _split_counts(rows: Rows) -> dict[str, Counts]:
    return {s: Counts.of(rows.y[i], rows.g[i], rows.groups, rows.classes)
            for s, i in rows.parts.items()}


def _require_images_in_splits(rows: Rows, where: str, what: str) -> None:
    """Every group has images in the pool and the test split, and the pool has both classes."""
    split_counts = _split_counts(rows)
    for split in ("pool", "test"):
        for grp, row in zip(rows.groups, split_counts[split].n):
            if row.sum() == 0:
                raise DataError(f"{where}: group {grp!r} has no images in the {split} split")
    if (split_counts["pool"].n.sum(0) == 0).any():
        raise DataError(f"{where}: target {what} has one class in the pool split; expected "
                        "both")


def _image_proposal(
    cfg: CelebAData | CheXpertData, rows: Rows, name: str, facts: list[str],
    notes: list[str], comments: dict[str, str],
) -> Proposal:
    _require_images_in_splits(rows, cfg.root, repr(cfg.target))
    if rows.found.missing:
        notes.append(f"warning: {len(rows.found.missing):,} listed images are not on disk, e.g. "
                     f"{rows.found.ids[rows.found.missing[0]]}; `run` stops on them")
    dumped = cfg.model_dump(mode="json")
    first = ["kind", "root", "target", "group", "groups"]
    dataset = {k: dumped[k] for k in [*first, *(k for k in dumped if k not in first)]}
    comments.update({
        "dataset.image_size": "images resized to 224 px, ResNet's ImageNet size",
        "dataset.cache_dir": "decoded images are cached here (null: ~/.cache/fairensemble or "
                             "$FAIRENSEMBLE_CACHE)",
        "dataset.max_pool": "no cap on the pool (a number subsamples it, stratified by group x "
                            "class)",
        "dataset.max_test": "no cap on val and test (a number caps each, stratified)",
    })
    return _finish(
        kind=cfg.kind, name=name, dataset=dataset, ds=None,
        counts=Counts.of(rows.y, rows.g, rows.groups, rows.classes),
        requested_rg=None, facts=facts, notes=notes, comments=comments,
        pool_parts=(rows.y[rows.parts["pool"]], rows.g[rows.parts["pool"]]),
        test=_split_counts(rows)["test"],
    )


