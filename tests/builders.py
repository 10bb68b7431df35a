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
