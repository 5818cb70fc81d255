"""FER2013 / FER+ adapter against fixture trees written here in the official csv layout."""

from __future__ import annotations

import numpy as np
import pytest

from facebehavior.data.datasets import DatasetNotFoundError, LabelFormatError, create_dataset
from facebehavior.data.datasets.fer2013 import FER2013, ferplus_majority, ferplus_majority_microsoft
from facebehavior.schema import EXPRESSIONS_8

USAGES = ["Training"] * 5 + ["PublicTest"] * 2 + ["PrivateTest"] * 3
# FER2013 labels: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral
EMOTIONS = [0, 3, 6, 5, 4, 3, 1, 2, 6, 3]
# FER+ votes: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
VOTES = [
    [0, 0, 0, 0, 8, 1, 0, 1, 0, 0],  # anger majority
    [1, 9, 0, 0, 0, 0, 0, 0, 0, 0],  # happiness
    [5, 0, 0, 5, 0, 0, 0, 0, 0, 0],  # tie neutral/sadness -> no majority
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face -> no majority, no distribution
    [0, 0, 0, 3, 0, 0, 0, 3, 4, 0],  # unknown has the most votes -> no majority
    [0, 7, 3, 0, 0, 0, 0, 0, 0, 0],  # happiness (PublicTest)
    [0, 0, 0, 0, 0, 0, 0, 6, 4, 0],  # contempt (PublicTest)
    [0, 0, 0, 0, 0, 0, 6, 0, 0, 4],  # fear over NF (PrivateTest)
    [10, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # neutral (PrivateTest)
    [2, 0, 8, 0, 0, 0, 0, 0, 0, 0],  # surprise (PrivateTest)
]


def _pixels(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (48, 48), dtype=np.uint8)


def _images() -> list[np.ndarray]:
    imgs = [_pixels(i) for i in range(10)]
    imgs[1] = imgs[9].copy()  # a Training image duplicated in PrivateTest -> excluded from train
    imgs[3] = imgs[4].copy()  # a duplicate inside Training -> kept
    return imgs


def _write(root, rows=None, votes=None, new=True):
    root.mkdir(parents=True, exist_ok=True)
    imgs = _images()
    lines = ["emotion,pixels,Usage"]
    for i, (e, u) in enumerate(zip(EMOTIONS, USAGES, strict=True)):
        lines.append(f"{e},{' '.join(map(str, imgs[i].ravel()))},{u}")
    if rows:
        for lineno, text in rows.items():
            lines[lineno - 1] = text
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    if new:
        head = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
        out = [head]
        for i, (u, v) in enumerate(zip(USAGES, VOTES, strict=True)):
            out.append(f"{u},fer{i:07d}.png," + ",".join(map(str, v)))
        if votes:
            for lineno, text in votes.items():
                out[lineno - 1] = text
        (root / "fer2013new.csv").write_text("\n".join(out) + "\n")
    return root


def test_ferplus_csv_layout(tmp_path):
    root = _write(tmp_path / "fer")
    ds = create_dataset("ferplus", root)
    assert ds.duplicate_report() == {
        "groups": 2,
        "rows": 4,
        "cross_split_groups": 1,
        "train_rows_excluded": 1,
        "val_test_groups": 0,
    }
    train = ds.load("train")
    assert list(train.image) == ["<array>:0", "<array>:2", "<array>:3", "<array>:4"]  # row 1 excluded
    idx = EXPRESSIONS_8.index
    assert train.expression.tolist() == [idx("anger"), -1, -1, -1]
    eye = np.eye(8)
    expect = eye[idx("anger")] * 0.8 + eye[idx("disgust")] * 0.1 + eye[idx("contempt")] * 0.1
    np.testing.assert_allclose(train.expression_dist[0], expect)
    np.testing.assert_allclose(
        train.expression_dist[1], (np.eye(8)[idx("neutral")] + np.eye(8)[idx("sadness")]) / 2
    )
    assert train.expression_dist[2].sum() == 0  # NF row: no label at all
    assert train.expression_mask.tolist() == [True, True, False, True]
    # unknown votes are dropped from the distribution (sadness 3, contempt 3 -> 1/2 each)
    np.testing.assert_allclose(train.expression_dist[3][[idx("sadness"), idx("contempt")]], [0.5, 0.5])
    val, test = ds.load("val"), ds.load("PublicTest")
    assert val.expression.tolist() == test.expression.tolist() == [idx("happiness"), idx("contempt")]
    test = ds.load("test")
    assert test.split == "PrivateTest"
    assert test.expression.tolist() == [idx("fear"), idx("neutral"), idx("surprise")]
    pix = ds.image_array(test)
    assert pix.shape == (3, 48, 48, 1) and pix.dtype == np.uint8
    np.testing.assert_array_equal(pix[2, :, :, 0], _images()[9])
    np.testing.assert_array_equal(ds.read_images(test, [0])[0][:, :, 0], _images()[7])


def test_original_fer2013_labels(tmp_path):
    root = _write(tmp_path / "fer", new=False)
    ds = create_dataset("fer2013", root, exclude_test_duplicates=False)
    train = ds.load("train")
    names = ["anger", "happiness", "neutral", "surprise", "sadness"]
    assert train.expression.tolist() == [EXPRESSIONS_8.index(n) for n in names]
    assert train.expression_dist is None
    with pytest.raises(DatasetNotFoundError, match="fer2013new.csv"):
        create_dataset("ferplus", root)


def test_kaggle_subfolder_layout(tmp_path):
    _write(tmp_path / "fer2013")  # the Kaggle tarball unpacks to fer2013/fer2013.csv
    ds = FER2013(tmp_path)
    assert len(ds.load("test")) == 3


@pytest.mark.parametrize(
    ("line", "text", "message"),
    [
        (4, "3,1 2 3,Training", "3 pixel values, expected 2304"),
        (3, "9,{px},Training", "emotion 9 outside"),
        (5, "x,{px},Training", "not an integer"),
        (6, "3,{px},Train", "Usage 'Train'"),
        (7, "3,{px}", "expected 3 fields"),
        (2, "3,{bad},Training", "non-integer"),
    ],
)
def test_malformed_csv_lines_name_file_and_line(tmp_path, line, text, message):
    px = " ".join(["1"] * 2304)
    text = text.format(px=px, bad=" ".join(["1"] * 2303 + ["a"]))
    root = _write(tmp_path / "fer", rows={line: text})
    with pytest.raises(LabelFormatError, match=message) as err:
        create_dataset("ferplus", root).load("train")
    assert err.value.line == line
    assert f"fer2013.csv:{line}:" in str(err.value)


def test_malformed_vote_lines(tmp_path):
    root = _write(tmp_path / "fer", votes={3: "Training,fer.png,1,x,0,0,0,0,0,0,0,0"})
    with pytest.raises(LabelFormatError, match=r"fer2013new.csv:3: vote counts must be integers"):
        create_dataset("ferplus", root).load("test")
    root = _write(tmp_path / "fer2", votes={8: "Training,fer.png,1,0,0,0,0,0,0,0,0,9"})
    with pytest.raises(LabelFormatError, match=r"fer2013new.csv:8: Usage 'Training' disagrees"):
        create_dataset("ferplus", root).load("test")


def test_corrupt_npz_is_reported(tmp_path):
    (tmp_path / "fer2013.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(LabelFormatError, match=r"fer2013\.npz: not a readable \.npz"):
        create_dataset("ferplus", tmp_path).load("test")


def test_missing_files_message(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"fer2013\.npz.*fer2013\.csv"):
        create_dataset("ferplus", tmp_path)
    with pytest.raises(KeyError, match="valid"):
        create_dataset("ferplus", _write(tmp_path / "fer")).load("validation")


def test_majority_rule_by_hand():
    votes = np.array(VOTES)
    idx = EXPRESSIONS_8.index
    expect = [idx("anger"), idx("happiness"), -1, -1, -1, idx("happiness"), idx("contempt"), idx("fear"),
              idx("neutral"), idx("surprise")]  # fmt: skip
    assert ferplus_majority(votes).tolist() == expect
    # Microsoft's rule agrees on these rows (each top count holds > half of the non-single votes).
    assert ferplus_majority_microsoft(votes).tolist() == expect


def test_microsoft_majority_rule_by_hand():
    idx = EXPRESSIONS_8.index
    votes = np.array(
        [
            [0, 4, 0, 3, 0, 0, 0, 0, 3, 0],  # plurality: happiness; 4 of 10 is no majority -> -1
            [1, 3, 1, 1, 1, 1, 1, 1, 0, 0],  # single votes dropped -> happiness holds 3 of 3
            [0, 6, 0, 0, 0, 0, 0, 0, 0, 4],  # happiness 6 of 10 over NF
            [2, 4, 0, 0, 0, 0, 0, 0, 4, 0],  # tie with unknown -> -1 under both
            [0, 0, 0, 0, 0, 0, 0, 0, 6, 4],  # unknown majority -> -1
            [3, 0, 0, 3, 0, 0, 0, 0, 0, 0],  # 3 of 6 is not more than half -> -1
        ]
    )
    h = idx("happiness")
    assert ferplus_majority(votes).tolist() == [h, h, h, -1, -1, -1]
    assert ferplus_majority_microsoft(votes).tolist() == [-1, h, h, -1, -1, -1]


def test_microsoft_majority_option(tmp_path):
    root = _write(tmp_path / "fer")
    with pytest.raises(ValueError, match="majority"):
        create_dataset("ferplus", root, majority="strictest")
    t = create_dataset("ferplus", root, majority="microsoft").load("test")
    assert t.expression.tolist() == ferplus_majority_microsoft(np.array(VOTES[7:])).tolist()


def test_shared_npz_counts():
    from shared_data import shared_path

    ds = create_dataset("ferplus", shared_path("datasets", "fer2013"))
    # Figures of the shared data README: 1,516 groups over 3,369 rows, 531 shared with a test split.
    rep = ds.duplicate_report()
    assert (rep["groups"], rep["rows"], rep["cross_split_groups"]) == (1516, 3369, 531)
    assert len(ds.load("val")) == 3589 and len(ds.load("test")) == 3589
    assert len(ds.load("train")) == 28709 - rep["train_rows_excluded"]


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    from facebehavior.data.datasets.fer2013 import default_root

    monkeypatch.setenv("FACEBEHAVIOR_FER2013", str(tmp_path))
    assert default_root() == tmp_path
    monkeypatch.delenv("FACEBEHAVIOR_FER2013")
    assert default_root().as_posix().endswith("shared/datasets/fer2013")
