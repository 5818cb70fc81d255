"""AffectNet (Mollahosseini et al., 2017): ~420k manually annotated web faces, 8 expressions + VA.

Official layout of the owners' release::

    AffectNet/
      Manually_Annotated_file_lists/
        training.csv      # header: subDirectory_filePath,face_x,face_y,face_width,face_height,
        validation.csv    #         facial_landmarks,expression,valence,arousal
      Manually_Annotated_Images/<subDirectory>/<file>.jpg

Expression codes: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger,
7 Contempt (mapped by name onto ``EXPRESSIONS_8``), 8 None, 9 Uncertain, 10 No-Face (no
expression label: ``expression = -1``). Valence/arousal lie in [-1, 1]; -2 marks "not
annotated" (masked). Rows with neither an expression nor VA are dropped. ``extra["face_box"]``
(N, 4) float32 holds the annotated face box x1, y1, x2, y2 in image pixels.

Splits: ``train`` (training.csv) and ``test`` = the released validation set (the test set was
never released; every paper, FaceBehaviorNet included, reports on it). ``validation`` is an
alias of ``test``. AffectNet has no subject ids (web images): ``subject`` is "".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebehavior.data.datasets._common import ImageFilesMixin, csv_rows, table_from_rows, to_float, to_int
from facebehavior.data.datasets.base import (
    DatasetAdapter,
    LabelFormatError,
    register_dataset,
    require_files,
)
from facebehavior.data.labels import LabelTable
from facebehavior.schema import EXPRESSIONS_8

__all__ = ["AffectNet", "AFFECTNET_TO_CANON"]

LISTS = "Manually_Annotated_file_lists"
IMAGES = "Manually_Annotated_Images"
FILES = {"train": "training.csv", "test": "validation.csv", "validation": "validation.csv"}
COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
           "expression", "valence", "arousal")  # fmt: skip
AFFECTNET_NAMES = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt")
# AffectNet code (0..7) → EXPRESSIONS_8 index; 8..10 are "no expression label".
AFFECTNET_TO_CANON = np.array([EXPRESSIONS_8.index(n) for n in AFFECTNET_NAMES], np.int64)
VA_UNANNOTATED = -2.0
HINT = "AffectNet is licensed by its owners (request access); see docs/datasets.md#affectnet."


@register_dataset("affectnet")
class AffectNet(ImageFilesMixin, DatasetAdapter):
    """AffectNet adapter (manually annotated part).

    Args:
        root: the AffectNet folder.
        num_expressions: 8 (with contempt) or 7 (contempt rows lose their expression label).
    """

    name = "affectnet"
    splits = ("train", "test", "validation")
    expected_files = (f"{LISTS}/training.csv", f"{LISTS}/validation.csv", f"{IMAGES}/")

    def __init__(self, root: str | Path, *, num_expressions: int = 8) -> None:
        super().__init__(root)
        if num_expressions not in (7, 8):
            raise ValueError(f"num_expressions must be 7 or 8, got {num_expressions}")
        self.num_expressions = num_expressions
        require_files(self.root, list(self.expected_files), corpus=self.name, hint=HINT)

    def load(self, split: str) -> LabelTable:
        """Rows of training.csv (``train``) or validation.csv (``test``)."""
        path = self.root / LISTS / FILES[self.check_split(split)]
        rows = csv_rows(path)
        head = next(rows, None)
        if head is None:
            raise LabelFormatError(path, 0, "empty file")
        col = {h: i for i, h in enumerate(head[1])}
        missing = [c for c in COLUMNS if c not in col]
        if missing:
            raise LabelFormatError(path, head[0], f"missing columns {missing}; expected {list(COLUMNS)}")
        image, expr, va, vam, box = [], [], [], [], []
        for lineno, r in rows:
            if len(r) != len(head[1]):
                raise LabelFormatError(path, lineno, f"expected {len(head[1])} fields, got {len(r)}")
            e = to_int(path, lineno, r[col["expression"]], "expression")
            if not 0 <= e <= 10:
                raise LabelFormatError(path, lineno, f"expression code {e} not in 0..10")
            v = to_float(path, lineno, r[col["valence"]], "valence")
            a = to_float(path, lineno, r[col["arousal"]], "arousal")
            has_va = v != VA_UNANNOTATED and a != VA_UNANNOTATED
            if has_va and not (-1 <= v <= 1 and -1 <= a <= 1):
                raise LabelFormatError(path, lineno, f"valence/arousal {v:g}, {a:g} outside [-1, 1] (or -2)")
            canon = int(AFFECTNET_TO_CANON[e]) if e < 8 else -1
            if canon == EXPRESSIONS_8.index("contempt") and self.num_expressions == 7:
                canon = -1
            if canon < 0 and not has_va:
                continue
            x, y, w, h = (to_float(path, lineno, r[col[c]], c) for c in COLUMNS[1:5])
            image.append(f"{IMAGES}/{r[col['subDirectory_filePath']]}")
            expr.append(canon)
            va.append((v, a) if has_va else (0.0, 0.0))
            vam.append(has_va)
            box.append((x, y, x + w, y + h))
        n = len(image)
        return table_from_rows(
            self.name, split, self.root, image=image, subject=[""] * n, expression=expr,
            va=np.asarray(va, np.float32).reshape(n, 2), va_mask=np.asarray(vam, bool),
            extra={"face_box": np.asarray(box, np.float32).reshape(n, 4)},
        )  # fmt: skip
