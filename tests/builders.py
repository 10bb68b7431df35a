"""Builders of tiny image data sets in their official layouts (CelebA, CheXpert), for tests.

Every image is a uniform grey whose level encodes the image's index (``grey_level(i)``), so a
test can check that row j of a decoded split is the file it should be. CelebA images are 24
wide and 40 tall with black 8-row bands at top and bottom: a correct centre crop removes the
bands, a missing crop darkens the mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CELEBA_ATTRS = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
]

CHEXPERT_COLUMNS = [
    "Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding",
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
]


def grey_level(i: int) -> int:
    """The grey level of image number ``i`` (distinct for neighbouring indices)."""
    return 20 + (37 * i) % 211


def make_celeba(root: Path, n: int = 48, seed: int = 0) -> Path:
    """Write ``n`` images and the two list files of CelebA under ``root``; returns ``root``.

    Image i (file ``{i+1:06d}.jpg``) is in split i % 3 (0 train, 1 val, 2 test); Male is 1 when
    (i // 3) is odd, Blond_Hair is 1 when (i // 6) is odd, so every split holds every
    group x label pair once ``n >= 36``. Other attributes are random -1/1 from ``seed``."""
    root = Path(root)
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    values = rng.choice([-1, 1], size=(n, len(CELEBA_ATTRS)))
    male, blond = CELEBA_ATTRS.index("Male"), CELEBA_ATTRS.index("Blond_Hair")
    lines = [f"{n}", " ".join(CELEBA_ATTRS) + " "]
    for i in range(n):
        values[i, male] = 1 if (i // 3) % 2 else -1
        values[i, blond] = 1 if (i // 6) % 2 else -1
        name = f"{i + 1:06d}.jpg"
        lines.append(name + " " + " ".join(f"{v:2d}" for v in values[i]))
        pixels = np.zeros((40, 24), dtype=np.uint8)
        pixels[8:32] = grey_level(i)
        Image.fromarray(pixels).convert("RGB").save(img_dir / name, quality=95)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{i + 1:06d}.jpg {i % 3}\n" for i in range(n))
    )
    return root


def chexpert_rows(n_patients: int, seed: int = 0) -> list[dict[str, str]]:
    """The rows ``make_chexpert`` writes (without the folder prefix), in order.

    Patient p has 2 studies with a frontal view each and one lateral view in study 1. Sex
    cycles Female, Male, Female, Male, Unknown over patients; "Lung Opacity" cycles
    1.0, 0.0, -1.0, blank over rows; the last 2 patients go to valid.csv."""
    rng = np.random.default_rng(seed)
    sexes = ["Female", "Male", "Female", "Male", "Unknown"]
    opacity = ["1.0", "0.0", "-1.0", ""]
    rows = []
    for p in range(n_patients):
        split = "valid" if p >= n_patients - 2 else "train"
        for study, view in ((1, "frontal"), (1, "lateral"), (2, "frontal")):
            k = len(rows)
            row = {c: "" for c in CHEXPERT_COLUMNS}
            row.update(
                {
                    "Path": f"{split}/patient{p + 1:05d}/study{study}/view"
                    f"{1 if view == 'frontal' else 2}_{view}.jpg",
                    "Sex": sexes[p % len(sexes)],
                    "Age": str(int(rng.integers(20, 90))),
                    "Frontal/Lateral": view.capitalize(),
                    "AP/PA": "AP" if view == "frontal" else "",
                    "Lung Opacity": opacity[k % len(opacity)],
                    "No Finding": "1.0" if k % 5 == 0 else "",
                    "Cardiomegaly": str(rng.choice(["1.0", "0.0", "-1.0", ""])),
                }
            )
            rows.append(row)
    return rows


def make_chexpert(root: Path, n_patients: int = 20, small: bool = True, seed: int = 0) -> Path:
    """Write a CheXpert folder (``CheXpert-v1.0-small`` or ``CheXpert-v1.0``) under ``root``
    with ``train.csv``, ``valid.csv`` and one 24x24 grayscale JPEG per row (row k has grey
    level ``grey_level(k)``); returns the folder."""
    folder = Path(root) / ("CheXpert-v1.0-small" if small else "CheXpert-v1.0")
    rows = chexpert_rows(n_patients, seed)
    header = ",".join(CHEXPERT_COLUMNS)
    csv = {"train": [header], "valid": [header]}
    for k, row in enumerate(rows):
        rel = row["Path"]
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((24, 24), grey_level(k), dtype=np.uint8)).save(path, quality=95)
        cells = [f"{folder.name}/{rel}" if c == "Path" else row[c] for c in CHEXPERT_COLUMNS]
        csv[rel.split("/")[0]].append(",".join(cells))
    for name, lines in csv.items():
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return folder


# ----------------------------------------------------------------------------- own image layouts


def lesion_pixels(label: int, sex: str, rng: np.random.Generator, size=(20, 16)) -> np.ndarray:
    """An RGB image [h, w, 3] whose class shows, not always clearly, as a darker (melanoma) or
    lighter (naevus) centre disc of random size under random lighting; the group tints the
    background, and the female group's images are noisier (a harder task)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    radius = min(w, h) / rng.uniform(2.6, 4.0)
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < radius ** 2
    base = np.array([200, 170, 150] if sex == "female" else [180, 160, 170], dtype=float)
    img = np.tile(base, (h, w, 1))
    shade = rng.normal(115 if label == 1 else 150, 14)
    img[disc] = shade * np.array([1.0, 0.72, 0.6])
    img += rng.normal(0, 15) + rng.normal(0, 45 if sex == "female" else 25, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_lesions(root: Path, n_lesions: int = 160, seed: int = 0) -> Path:
    """A skin-lesion folder as HAM10000 ships it: ``metadata.csv`` (lesion_id, image_id without
    extension, dx, age, sex, localization) and the JPEGs split over ``images_part_1/`` and
    ``images_part_2/``; each lesion has 1-3 images (same diagnosis and sex); about 4 % of the
    lesions have sex ``unknown``. Returns the metadata file."""
    root = Path(root)
    parts = [root / "images_part_1", root / "images_part_2"]
    for p in parts:
        p.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["lesion_id,image_id,dx,dx_type,age,sex,localization"]
    k = 0
    for lesion in range(n_lesions):
        sex = "unknown" if lesion % 25 == 7 else ("female" if rng.random() < 0.4 else "male")
        dx = "mel" if rng.random() < 0.45 else "nv"
        for _ in range(int(rng.integers(1, 4))):
            image_id = f"ISIC_{24306 + k:07d}"
            pixels = lesion_pixels(int(dx == "mel"), sex, rng)
            Image.fromarray(pixels).save(parts[k % 2] / f"{image_id}.jpg", quality=92)
            age = "" if k % 17 == 3 else str(int(rng.integers(20, 85)))
            rows.append(f"HAM_{lesion:07d},{image_id},{dx},histo,{age},{sex},back")
            k += 1
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root / "metadata.csv"


def png_bytes(pixels: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def make_hf_parquet(folder: Path, n: int = 240, shards: int = 2, seed: int = 1) -> Path:
    """A Hugging Face ``datasets`` export: ``folder/train-0000i-of-0000n.parquet`` shards whose
    ``image`` column is the Image feature's struct {bytes, path} (PNG bytes), with an integer
    ``label`` and a ``gender`` column. Returns the folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    genders = np.where(rng.random(n) < 0.5, "woman", "man")
    images = [{"bytes": png_bytes(lesion_pixels(int(lab), "female" if gen == "woman" else "male",
                                                rng)), "path": f"img_{i:05d}.png"}
              for i, (lab, gen) in enumerate(zip(labels, genders))]
    kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    bounds = np.linspace(0, n, shards + 1).astype(int)
    for s in range(shards):
        a, b = bounds[s], bounds[s + 1]
        table = pa.table({"image": pa.array(images[a:b], type=kind),
                          "label": pa.array(labels[a:b].astype(np.int64)),
                          "gender": pa.array(genders[a:b].tolist())})
        pq.write_table(table, folder / f"train-{s:05d}-of-{shards:05d}.parquet")
    return folder


def make_german(path: Path, n: int = 1000, seed: int = 0) -> Path:
    """A file in the UCI German credit layout (``german.data``): 20 attributes and the class
    (1 good, 2 bad, about 30 % bad as in the original) separated by single spaces, no header.
    Attribute 9 is 'personal status and sex' (A91-A94); the class depends on attributes 1, 2
    and 5."""
    rng = np.random.default_rng(seed)
    cats = {1: ["A11", "A12", "A13", "A14"], 3: ["A30", "A31", "A32", "A33", "A34"],
            4: ["A40", "A41", "A42", "A43", "A49"], 6: ["A61", "A62", "A65"],
            7: ["A71", "A73", "A75"], 9: ["A91", "A92", "A93", "A94"], 10: ["A101", "A103"],
            12: ["A121", "A122", "A124"], 14: ["A141", "A143"], 15: ["A151", "A152"],
            17: ["A171", "A173", "A174"], 19: ["A191", "A192"], 20: ["A201", "A202"]}
    status_p = [0.05, 0.31, 0.55, 0.09]
    lines = []
    for _ in range(n):
        row = []
        for a in range(1, 21):
            if a in cats:
                p = status_p if a == 9 else None
                row.append(str(rng.choice(cats[a], p=p)))
            elif a == 2:
                row.append(str(int(rng.integers(6, 60))))
            elif a == 5:
                row.append(str(int(rng.integers(250, 15000))))
            else:
                row.append(str(int(rng.integers(1, 5))))
        risk = (row[0] in ("A11", "A12")) * 1.2 + int(row[1]) / 40 + int(row[4]) / 12000
        row.append("2" if risk + rng.normal(0, 0.6) > 2.6 else "1")  # about 30 % bad
        lines.append(" ".join(row))
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


# ----------------------------------------------------------------------------- folders, no table


def tiny_image(path: Path, level: int, size: int = 8) -> Path:
    """A uniform ``size`` x ``size`` RGB image of grey ``level`` (JPEG or PNG by the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), level, dtype=np.uint8)).save(path, quality=95)
    return path


UTK_MISFITS = {"61_1_20170109150557335.jpg": "3 parts between '_', the layout has at least 4",
               "39_1__20170116174525125.jpg": "an empty field"}


def make_utkface(root: Path, n: int = 72) -> Path:
    """A flat folder named as UTKFace's files are: ``[age]_[gender]_[race]_[date].jpg``
    (gender i % 2, race (i // 2) % 3, so every race x gender pair has n / 6 images; image i has
    grey level ``grey_level(i)``), plus the names in ``UTK_MISFITS``, which do not fit that
    layout, and the debris of a copy from a Mac (``.DS_Store``, ``._`` files). Returns root."""
    root = Path(root)
    for i in range(n):
        tiny_image(root / f"{20 + i % 50}_{i % 2}_{(i // 2) % 3}_20170116{i:09d}.jpg",
                   grey_level(i))
    for name in UTK_MISFITS:
        tiny_image(root / name, 0)
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "._20_0_0_20170116000000000.jpg").write_bytes(b"\x00\x05\x16\x07")
    return root


def make_image_tree(root: Path, per_leaf: int = 12, suffix: str = ".png") -> Path:
    """An ImageFolder-style tree ``<label>/<sex>/img_<k>.png`` (labels cat and dog, sexes f
    and m, ``per_leaf`` images each, grey level ``grey_level(k)`` over the whole tree) with a
    stray ``README.txt``, an empty folder and a hidden ``.ipynb_checkpoints/`` holding a
    copy of an image. Returns root."""
    root = Path(root)
    k = 0
    for label in ("cat", "dog"):
        for sex in ("f", "m"):
            for _ in range(per_leaf):
                tiny_image(root / label / sex / f"img_{k:04d}{suffix}", grey_level(k))
                k += 1
    (root / "README.txt").write_text("pets, by label and sex\n")
    (root / "empty").mkdir()
    tiny_image(root / ".ipynb_checkpoints" / "img_0000-checkpoint.png", 0)
    return root


def break_image(path: Path, how: str) -> Path:
    """Damage an image file in place: ``truncated`` keeps its first half (a JPEG or PNG cut
    short), ``text`` replaces it with text, ``empty`` leaves zero bytes."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "text":
        path.write_text("not an image, whatever the name says\n")
    elif how == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(how)
    return path
