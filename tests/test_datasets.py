"""Dataset adapters against fixture trees written here in each corpus' official layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebehavior.data.datasets import (
    DatasetNotFoundError,
    LabelFormatError,
    create_dataset,
    list_datasets,
)
from facebehavior.data.datasets.bp4d import BP4D_PARTS
from facebehavior.data.datasets.disfa import DISFA_AUS, DISFA_PARTS
from facebehavior.relatedness import RAFDB_COMPOUND_11
from facebehavior.schema import EXPRESSIONS_8

E = {n: i for i, n in enumerate(EXPRESSIONS_8)}


def img(path: Path, value: int = 100, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def assert_format_error(excinfo, path: Path, line: int) -> None:
    err = excinfo.value
    assert err.path == path and err.line == line
    assert f"{path}:{line}" in str(err)


# ----------------------------------------------------------------------------------------- DISFA
def disfa_tree(root: Path, intensities=(0, 1, 2, 3, 5)) -> Path:
    for s in sorted(x for p in DISFA_PARTS for x in p):
        for a in DISFA_AUS:
            vals = intensities if (s, a) == ("SN001", 12) else (0,) * len(intensities)
            write(root / "ActionUnit_Labels" / s / f"{s}_au{a}.txt",
                  "".join(f"{i + 1},{v}\n" for i, v in enumerate(vals)))  # fmt: skip
        write(root / "Videos_LeftCamera" / f"LeftVideo{s}_comp.avi", "")
    return root


def test_disfa_folds_threshold_and_layout(tmp_path):
    ds = create_dataset("disfa", disfa_tree(tmp_path))
    all_subjects = {x for p in DISFA_PARTS for x in p}
    for k in (1, 2, 3):
        train, test = ds.load(f"fold{k}_train"), ds.load(f"fold{k}_test")
        assert set(train.subject).isdisjoint(test.subject)
        assert set(train.subject) | set(test.subject) == all_subjects
    assert set(ds.load("fold1_test").subject) == set(DISFA_PARTS[2])  # JAA-Net: fold 1 tests part 3
    assert set(ds.load("fold3_test").subject) == set(DISFA_PARTS[0])
    t = ds.load("all")
    assert t.aus == DISFA_AUS and len(t) == 27 * 5
    rows = np.flatnonzero(t.subject == "SN001")
    j = DISFA_AUS.index(12)
    np.testing.assert_array_equal(t.au_intensity[rows, j], [0, 1, 2, 3, 5])
    np.testing.assert_array_equal(t.au_occurrence[rows, j], [0, 0, 1, 1, 1])  # occurrence = intensity >= 2
    np.testing.assert_array_equal(t.frame[rows], [0, 1, 2, 3, 4])  # 1-based label frames -> 0-based
    assert t.image[rows[0]] == "Videos_LeftCamera/LeftVideoSN001_comp.avi"
    assert t.au_mask.all()
    eight = create_dataset("disfa", tmp_path, aus=(1, 2, 4, 6, 9, 12, 25, 26)).load("fold2_test")
    assert eight.aus == (1, 2, 4, 6, 9, 12, 25, 26) and eight.au_occurrence.shape[1] == 8


def test_disfa_malformed_and_missing(tmp_path):
    root = disfa_tree(tmp_path)
    bad = write(root / "ActionUnit_Labels/SN003/SN003_au4.txt", "1,0\n2,x\n")
    with pytest.raises(LabelFormatError) as e:
        create_dataset("disfa", root).load("fold1_test")
    assert_format_error(e, bad, 2)
    write(bad, "1,0\n2,7\n")
    with pytest.raises(LabelFormatError) as e:
        create_dataset("disfa", root).load("fold1_test")
    assert_format_error(e, bad, 2)
    bad.unlink()
    with pytest.raises(DatasetNotFoundError, match="SN003/SN003_au4.txt"):
        create_dataset("disfa", root).load("fold1_test")
    (root / "Videos_LeftCamera/LeftVideoSN001_comp.avi").unlink()
    with pytest.raises(DatasetNotFoundError, match="LeftVideoSN001_comp.avi"):
        create_dataset("disfa", root).load("fold1_train")


def test_video_frames_are_decoded(tmp_path, monkeypatch):
    av = pytest.importorskip("av")
    root = disfa_tree(tmp_path)
    path = root / "Videos_LeftCamera/LeftVideoSN001_comp.avi"
    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=20)
        st.width = st.height = 32
        st.pix_fmt = "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i + 20, np.uint8), format="rgb24")
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    ds = create_dataset("disfa", root)
    t = ds.load("all")
    rows = np.flatnonzero(t.subject == "SN001")
    ims = ds.read_images(t, [rows[3], rows[1]])
    assert ims[0].shape == (32, 32, 3)
    assert abs(float(ims[0].mean()) - 140) < 6 and abs(float(ims[1].mean()) - 60) < 6
    # Batches in frame order continue the open decoder; an earlier frame reopens the video.
    from facebehavior.data.datasets import _common

    opened = []
    real_init = _common._VideoCursor.__init__
    monkeypatch.setattr(
        _common._VideoCursor,
        "__init__",
        lambda s, p, start: (opened.append(start), real_init(s, p, start))[1],
    )
    means = [float(ds.read_images(t, [rows[i]])[0].mean()) for i in (0, 2, 4, 1)]
    np.testing.assert_allclose(means, [20, 100, 180, 60], atol=6)
    assert opened == [0, 1]
    import pickle

    assert pickle.loads(pickle.dumps(ds)).camera == "left"  # process workers get a copy


# ------------------------------------------------------------------------------------------ BP4D
BP4D_HEADER = "Frame,1,2,4,6,7,10,12,14,15,17,23,24\n"


def bp4d_tree(root: Path, subjects, frames_dir="Sequences") -> Path:
    for s in subjects:
        rows = ["1,1,0,0,0,0,0,0,0,0,0,0,0", "2,9,0,0,1,0,0,1,0,0,0,0,0", "3,0,0,0,0,0,0,0,0,0,0,0,1"]
        write(root / "AUCoding/AU_OCC" / f"{s}_T1.csv", BP4D_HEADER + "\n".join(rows) + "\n")
        head = "Frame,AU06\n" if s == "M001" else ""  # a header line in some copies is tolerated
        write(root / "AUCoding/AU_INT/AU06" / f"{s}_T1_AU06.csv", head + "1,0\n2,3\n3,9\n")
        for f in (1, 2, 3):
            img(root / frames_dir / s / "T1" / f"{f:04d}.jpg")
    return root


def test_bp4d_folds_unknown_mask_intensity(tmp_path):
    subjects = [x for p in BP4D_PARTS for x in p]
    root = bp4d_tree(tmp_path, subjects)
    (root / "Sequences/F001/T1/0003.jpg").unlink()  # a labelled frame without image is skipped
    ds = create_dataset("bp4d", root)
    for k in (1, 2, 3):
        tr, te = ds.load(f"fold{k}_train"), ds.load(f"fold{k}_test")
        assert set(tr.subject).isdisjoint(te.subject)
        assert set(tr.subject) | set(te.subject) == set(subjects)
    t = ds.load("all")
    assert len(t) == 41 * 3 - 1
    r = np.flatnonzero((t.subject == "F002") & (t.frame == 2))[0]
    j1, j6, j12 = (t.aus.index(a) for a in (1, 6, 12))
    assert not t.au_mask[r, j1] and t.au_mask[r, j6]  # 9 = uncoded -> masked
    assert t.au_occurrence[r, j6] == 1 and t.au_occurrence[r, j12] == 1
    assert t.au_intensity[r, j6] == 3 and t.au_intensity_mask[r, j6] and not t.au_intensity_mask[r, j12]
    r3 = np.flatnonzero((t.subject == "F002") & (t.frame == 3))[0]
    assert not t.au_intensity_mask[r3, j6]  # intensity 9 -> masked
    assert t.image[r] == "Sequences/F002/T1/0002.jpg" and t.video[r] == "F002_T1"
    r = np.flatnonzero((t.subject == "M001") & (t.frame == 2))[0]
    assert t.au_intensity[r, j6] == 3 and t.au_intensity_mask[r, j6]
    # Columns of AUs not used may hold anything (releases carry every AU number up to 99).
    odd = write(root / "AUCoding/AU_OCC/F002_T1.csv", BP4D_HEADER + "1,1,0,0,0,0,0,0,0,0,0,0,5\n")
    only = create_dataset("bp4d", root, aus=(1, 2)).load("all")
    assert only.aus == (1, 2) and len(only) == len(t) - 2  # F002 now codes one frame
    with pytest.raises(LabelFormatError, match="AU24 code 5"):
        ds.load("all")
    bp4d_tree(root, [odd.stem.split("_")[0]])  # restore F002
    bad = write(
        root / "AUCoding/AU_OCC/F001_T1.csv",
        BP4D_HEADER + "1,1,0,0,0,0,0,0,0,0,0,0,0\n2,7,0,0,0,0,0,0,0,0,0,0,0\n",
    )
    with pytest.raises(LabelFormatError) as e:
        ds.load("fold1_train")
    assert_format_error(e, bad, 3)
    (root / "AUCoding/AU_OCC/F001_T1.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="F001"):
        ds.load("fold1_train")


def test_bp4d_plus_round_robin_folds(tmp_path):
    subjects = [f"F{i:03d}" for i in range(1, 8)] + [f"M{i:03d}" for i in range(1, 6)]
    ds = create_dataset("bp4d_plus", bp4d_tree(tmp_path, subjects, frames_dir="2D+3D"))
    tests = [set(ds.load(f"fold{k}_test").subject) for k in (1, 2, 3)]
    assert all(len(t) == 4 for t in tests) and set().union(*tests) == set(subjects)
    for k in (1, 2, 3):
        assert set(ds.load(f"fold{k}_train").subject).isdisjoint(tests[k - 1])


def test_bp4d_plus_frames_inside_subject_zips(tmp_path):
    import io
    import zipfile

    subjects = ["F001", "M001", "F002"]
    root = bp4d_tree(tmp_path, subjects, frames_dir="2D+3D")
    for s in subjects:
        with zipfile.ZipFile(root / "2D+3D" / f"{s}.zip", "w") as z:
            for f in (1, 2, 3):
                buf = io.BytesIO()
                Image.fromarray(np.full((6, 5, 3), 10 * f, np.uint8)).save(buf, format="PNG")
                z.writestr(f"{s}/T1/{f:04d}.png", buf.getvalue())
        for p in (root / "2D+3D" / s / "T1").iterdir():
            p.unlink()
        (root / "2D+3D" / s / "T1").rmdir()
        (root / "2D+3D" / s).rmdir()
    ds = create_dataset("bp4d_plus", root)
    t = ds.load("all")
    assert len(t) == 9 and t.image[0] == "2D+3D/F001.zip/F001/T1/0001.png"
    ims = ds.read_images(t, [2, 1])
    assert ims[0].shape == (6, 5, 3) and ims[0][0, 0, 0] == 30 and ims[1][0, 0, 0] == 20


def test_fera2015_partitions(tmp_path):
    # One AUCoding for all subjects, frames in one folder per partition (the release's layout).
    bp4d_tree(tmp_path, ["F001", "M001", "F002"], frames_dir="BP4D-training")
    (tmp_path / "BP4D-development").mkdir()
    (tmp_path / "BP4D-training" / "F002").rename(tmp_path / "BP4D-development" / "F002")
    ds = create_dataset("fera2015", tmp_path)
    tr, dev = ds.load("train"), ds.load("dev")
    assert set(tr.subject) == {"F001", "M001"} and set(dev.subject) == {"F002"}
    assert dev.image[0] == "BP4D-development/F002/T1/0001.jpg" and (tmp_path / dev.image[0]).is_file()
    assert (
        tr.aus == (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23) and dev.au_intensity_mask[:, tr.aus.index(6)].any()
    )
    img(tmp_path / "BP4D-development" / "F001" / "T1" / "0001.jpg")
    with pytest.raises(ValueError, match="share subjects"):
        ds.load("dev")


def test_fera2017_pose_videos(tmp_path):
    occ = "Frame,AU01,AU04,AU06,AU07,AU10,AU12,AU14,AU15,AU17,AU23\n"
    write(
        tmp_path / "Train_Occ/FERA17_TR_F001_T1.csv", occ + "1,1,0,0,0,0,0,0,0,0,0\n2,9,0,0,0,0,1,0,0,0,0\n"
    )
    write(tmp_path / "Train_Int/FERA17_TR_F001_T1_AU12_Int.csv", "1,0\n2,4\n")
    write(tmp_path / "Train_Video/FERA17_TR_F001_T1_6.mp4", "")
    write(tmp_path / "Train_Video/FERA17_TR_F001_T1_1.mp4", "")
    write(tmp_path / "Valid_Occ/FERA17_VA_F002_T1.csv", occ + "1,0,0,0,0,0,0,0,0,0,0\n")
    write(tmp_path / "Valid_Video/FERA17_VA_F002_T1_6.mp4", "")
    ds = create_dataset("fera2017", tmp_path)
    t = ds.load("train")
    assert t.image.tolist() == ["Train_Video/FERA17_TR_F001_T1_6.mp4"] * 2 and t.frame.tolist() == [0, 1]
    j1, j12 = t.aus.index(1), t.aus.index(12)
    assert not t.au_mask[1, j1] and t.au_occurrence[1, j12] == 1
    assert t.au_intensity[1, j12] == 4 and t.au_intensity_mask[1, j12] and not t.au_intensity_mask[1, j1]
    assert set(ds.load("valid").subject) == {"F002"}
    assert create_dataset("fera2017", tmp_path, pose=1).load("train").image[0].endswith("_1.mp4")
    with pytest.raises(DatasetNotFoundError, match="FERA17_VA_F002_T1_3.mp4"):
        create_dataset("fera2017", tmp_path, pose=3).load("valid")
    bad = write(tmp_path / "Train_Int/FERA17_TR_F001_T1_AU12_Int.csv", "1,0\n2,6\n")
    with pytest.raises(LabelFormatError) as e:
        ds.load("train")
    assert_format_error(e, bad, 2)


# ------------------------------------------------------------------------------------- Aff-Wild2
def affwild2_tree(root: Path) -> Path:
    ann = root / "Annotations"
    write(ann / "VA_Estimation_Challenge/Train_Set/v1.txt", "valence,arousal\n0.5,-0.25\n-5,-5\n0.1,0.2\n")
    write(ann / "EXPR_Classification_Challenge/Train_Set/v1.txt",
          "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n4\n7\n-1\n")  # fmt: skip
    write(ann / "AU_Detection_Challenge/Train_Set/v2_left.txt", "AU1,AU2,AU12\n1,0,-1\n0,1,1\n")
    write(ann / "VA_Estimation_Challenge/Validation_Set/v3.txt", "valence,arousal\n0,0\n")
    write(
        ann / "EXPR_Classification_Challenge/Validation_Set/v3.txt",
        "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise\n1\n",
    )
    write(ann / "AU_Detection_Challenge/Validation_Set/v3.txt", "AU1,AU2,AU12\n0,0,0\n")
    for v, n in (("v1", 3), ("v2_left", 2), ("v3", 1)):
        for f in range(1, n + 1):
            img(root / "cropped_aligned" / v / f"{f:05d}.jpg")
    return root


def test_affwild2_merge_masks_and_other(tmp_path):
    root = affwild2_tree(tmp_path)
    (root / "cropped_aligned/v1/00003.jpg").unlink()  # frame without a crop is dropped
    t = create_dataset("affwild2", root).load("train")
    assert list(zip(t.video, t.frame, strict=True)) == [("v1", 1), ("v1", 2), ("v2_left", 1), ("v2_left", 2)]
    np.testing.assert_allclose(t.va[0], [0.5, -0.25])
    np.testing.assert_array_equal(t.va_mask, [True, False, False, False])  # -5 -> unannotated
    np.testing.assert_array_equal(t.expression, [E["happiness"], -1, -1, -1])
    np.testing.assert_array_equal(t.extra["expression_other"], [False, True, False, False])
    assert t.aus == (1, 2, 12)
    np.testing.assert_array_equal(t.au_mask[2], [True, True, False])  # -1 -> unannotated
    np.testing.assert_array_equal(t.au_occurrence[3], [0, 1, 1])
    assert not t.au_mask[:2].any()
    assert t.image[2] == "cropped_aligned/v2_left/00001.jpg" and t.subject[2] == "v2_left"
    v = create_dataset("affwild2", root).load("val")
    assert v.expression.tolist() == [E["anger"]] and set(v.subject).isdisjoint(t.subject)
    only_va = create_dataset("affwild2", root, tasks=("va",)).load("train")
    assert set(only_va.video) == {"v1"}


def test_affwild2_release_folder_names(tmp_path):
    root = affwild2_tree(tmp_path / "a")
    (root / "Annotations").rename(root / "6th ABAW Annotations")
    (root / "Faces").mkdir()
    (root / "cropped_aligned").rename(root / "Faces" / "cropped_aligned")
    t = create_dataset("affwild2", root).load("train")
    assert len(t) == 5 and t.image[0] == "Faces/cropped_aligned/v1/00001.jpg"


def test_affwild2_malformed(tmp_path):
    root = affwild2_tree(tmp_path)
    bad = write(
        root / "Annotations/VA_Estimation_Challenge/Train_Set/v1.txt", "valence,arousal\n0.5,0.1\n1.5,0\n"
    )
    with pytest.raises(LabelFormatError) as e:
        create_dataset("affwild2", root).load("train")
    assert_format_error(e, bad, 3)
    bad = write(bad, "valence,arousal\n0.5\n")
    with pytest.raises(LabelFormatError) as e:
        create_dataset("affwild2", root).load("train")
    assert_format_error(e, bad, 2)


# -------------------------------------------------------------------------------------- Aff-Wild
def test_affwild(tmp_path):
    write(tmp_path / "annotations/train/valence/105.txt", "0.1\n0.2\n0.3\n")
    write(tmp_path / "annotations/train/arousal/105.txt", "-0.1\n-0.2\n-0.3\n")
    write(tmp_path / "videos/train/105.avi", "")
    write(tmp_path / "videos/train/1050.mp4", "")
    t = create_dataset("affwild", tmp_path).load("train")
    # The annotation package's own top folder is accepted too.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "annotations").rename(tmp_path / "pkg" / "annotations")
    assert len(create_dataset("affwild", tmp_path).load("train")) == 3
    assert t.image.tolist() == ["videos/train/105.avi"] * 3 and t.frame.tolist() == [0, 1, 2]
    np.testing.assert_allclose(t.va[2], [0.3, -0.3], rtol=1e-6)
    bad = write(tmp_path / "pkg/annotations/train/arousal/105.txt", "-0.1\nabc\n-0.3\n")
    with pytest.raises(LabelFormatError) as e:
        create_dataset("affwild", tmp_path).load("train")
    assert_format_error(e, bad, 2)
    write(bad, "0\n0\n")
    with pytest.raises(LabelFormatError, match="2 arousal lines but 3 valence"):
        create_dataset("affwild", tmp_path).load("train")


# ------------------------------------------------------------------------------------- AffectNet
AFFECTNET_HEAD = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
)


def test_affectnet(tmp_path):
    lists = tmp_path / "Manually_Annotated_file_lists"
    rows = [
        "1/a.jpg,10,20,30,40,1;2;3,1,0.5,0.4",  # happy
        "1/b.jpg,0,0,10,10,1;2,7,-0.3,0.2",  # contempt
        "2/c.jpg,0,0,10,10,1;2,8,0.1,0.1",  # None: VA only
        "2/d.jpg,0,0,10,10,1;2,10,-2,-2",  # No-Face, no VA: dropped
        "2/e.jpg,0,0,10,10,1;2,6,-2,-2",  # anger without VA
    ]
    write(lists / "training.csv", AFFECTNET_HEAD + "\n".join(rows) + "\n")
    write(lists / "validation.csv", AFFECTNET_HEAD + rows[0] + "\n")
    (tmp_path / "Manually_Annotated_Images").mkdir()
    t = create_dataset("affectnet", tmp_path).load("train")
    assert t.image.tolist() == [
        f"Manually_Annotated_Images/{x}" for x in ("1/a.jpg", "1/b.jpg", "2/c.jpg", "2/e.jpg")
    ]
    np.testing.assert_array_equal(t.expression, [E["happiness"], E["contempt"], -1, E["anger"]])
    np.testing.assert_array_equal(t.va_mask, [True, True, True, False])
    np.testing.assert_allclose(t.extra["face_box"][0], [10, 20, 40, 60])
    seven = create_dataset("affectnet", tmp_path, num_expressions=7).load("train")
    assert seven.expression[1] == -1
    assert len(create_dataset("affectnet", tmp_path).load("test")) == 1
    bad = write(lists / "training.csv", AFFECTNET_HEAD + rows[0] + "\n1/x.jpg,0,0,1,1,1,12,0,0\n")
    with pytest.raises(LabelFormatError) as e:
        create_dataset("affectnet", tmp_path).load("train")
    assert_format_error(e, bad, 3)


# ---------------------------------------------------------------------------------------- RAF-DB
def test_rafdb_basic_and_compound(tmp_path):
    write(tmp_path / "basic/EmoLabel/list_patition_label.txt",
          "train_00001.jpg 1\ntrain_00002.jpg 4\ntrain_00003.jpg 7\ntest_0001.jpg 6\n")  # fmt: skip
    img(tmp_path / "basic/Image/aligned/train_00001_aligned.jpg")
    write(tmp_path / "compound/EmoLabel/list_patition_label.txt", "train_0001.jpg 1\ntest_0001.jpg 11\n")
    img(tmp_path / "compound/Image/aligned/train_0001_aligned.jpg")
    ds = create_dataset("rafdb", tmp_path)
    tr = ds.load("train")
    np.testing.assert_array_equal(tr.expression, [E["surprise"], E["happiness"], E["neutral"]])
    assert tr.image[0] == "basic/Image/aligned/train_00001_aligned.jpg"
    assert ds.read_images(tr, [0])[0].shape == (8, 8, 3)
    # Images are read like the Analyzer reads them: EXIF orientation applied.
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(
        tmp_path / "basic/Image/aligned/train_00001_aligned.jpg", exif=exif
    )
    assert ds.read_images(tr, [0])[0].shape == (8, 4, 3)
    assert ds.load("test").expression.tolist() == [E["anger"]]
    c = create_dataset("rafdb_compound", tmp_path).load("test")
    assert RAFDB_COMPOUND_11[c.extra["compound"][0]] == "disgustedly_surprised" and c.expression[0] == -1
    both = create_dataset("rafdb_compound", tmp_path).load("train")
    assert (
        both.extra["compound"].tolist() == [0]
        and both.subset(np.array([], np.int64)).extra["compound"].size == 0
    )
    bad = write(tmp_path / "basic/EmoLabel/list_patition_label.txt", "train_00001.jpg 1\ntrain_00002.jpg 8\n")
    with pytest.raises(LabelFormatError) as e:
        ds.load("train")
    assert_format_error(e, bad, 2)


# --------------------------------------------------------------------------------------- AFEW-VA
def afewva_tree(root: Path) -> Path:
    for clip, actor in (
        ("001", "Ann"),
        ("002", "Bob"),
        ("003", "Ann"),
        ("004", "Cid"),
        ("005", "Dee"),
        ("006", "Eve"),
    ):
        lm = [[float(i), float(i + 1)] for i in range(68)]
        frames = {f"{f:05d}": {"valence": 5 - f, "arousal": -10 + f, "landmarks": lm} for f in range(2)}
        write(root / clip / f"{clip}.json", json.dumps({"actor": actor, "video_id": clip, "frames": frames}))
        for f in range(2):
            img(root / clip / f"{f:05d}.png")
    return root


def test_afewva_folds_and_scaling(tmp_path):
    ds = create_dataset("afewva", afewva_tree(tmp_path))
    t = ds.load("all")
    assert len(t) == 12
    r = np.flatnonzero((t.video == "002") & (t.frame == 1))[0]
    np.testing.assert_allclose(t.va[r], [0.4, -0.9])
    assert t.subject[r] == "Bob" and t.extra["landmarks68"].shape == (12, 68, 2)
    for k in range(1, 6):
        tr, te = ds.load(f"fold{k}_train"), ds.load(f"fold{k}_test")
        assert set(tr.subject).isdisjoint(te.subject) and len(tr) + len(te) == 12
    nested = afewva_tree(tmp_path / "nested" / "01")  # the release's zip parts kept as folders
    tn = create_dataset("afewva", tmp_path / "nested").load("all")
    assert len(tn) == 12 and tn.image[0] == "01/001/00000.png" and tn.video[0] == "001"
    assert (nested / "001/00000.png").is_file()
    bad = write(tmp_path / "003/003.json", '{"actor": "Ann",\n "frames": {,}}')
    with pytest.raises(LabelFormatError) as e:
        ds.load("all")
    assert_format_error(e, bad, 2)


# ------------------------------------------------------------------------------------- EmotioNet
def test_emotionet(tmp_path):
    rows = ["URL,AU1,AU2,AU12", "http://x.org/a/img1.jpg,1,0,999", "http://x.org/b/img2.jpg,0,1,1",
            "http://x.org/dead.jpg,1,1,1"]  # fmt: skip
    write(tmp_path / "emotionet_manual.csv", "\n".join(rows) + "\n")
    img(tmp_path / "images/img1.jpg")
    img(tmp_path / "images/img2.jpg")
    t = create_dataset("emotionet", tmp_path).load("all")
    assert t.aus == (1, 2, 12) and t.image.tolist() == ["images/img1.jpg", "images/img2.jpg"]
    np.testing.assert_array_equal(t.au_mask[0], [True, True, False])  # 999 -> not coded
    np.testing.assert_array_equal(t.au_occurrence[1], [0, 1, 1])
    # The challenge's positional tab-separated files; images kept under their URL folder.
    img(tmp_path / "images/N_01/img3.jpg")
    vals = ["1", "0", "0", "999"] + ["0"] * 7 + ["1"] + ["0"] * 20
    write(
        tmp_path / "challenge.txt",
        "\t".join(["https://s3.x/emotionet/Images/N_01/img3.jpg", "id7", *vals]) + "\n",
    )
    c = create_dataset("emotionet", tmp_path, files={"val": "challenge.txt"}).load("val")
    assert c.image.tolist() == ["images/N_01/img3.jpg"] and c.aus == (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26)
    np.testing.assert_array_equal(c.au_occurrence[0], [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(c.au_mask[0], [1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1])  # AU4 = 999
    bad = write(
        tmp_path / "emotionet_manual.csv", "URL,AU1\nhttp://x.org/a/img1.jpg,1\nhttp://x.org/a/img2.jpg,2\n"
    )
    with pytest.raises(LabelFormatError) as e:
        create_dataset("emotionet", tmp_path).load("all")
    assert_format_error(e, bad, 3)


# ---------------------------------------------------------------------------------------- CelebA
def test_celeba_attributes(tmp_path):
    names = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bushy_Eyebrows", "Eyeglasses", "Male",
             "Mouth_Slightly_Open", "Narrow_Eyes", "No_Beard", "Smiling", "Young"]  # fmt: skip
    vals = {"000001.jpg": [1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1], "000002.jpg": [-1] * 11}
    body = "".join(f"{k} " + " ".join(map(str, v)) + "\n" for k, v in vals.items())
    write(tmp_path / "Anno/list_attr_celeba.txt", "2\n" + " ".join(names) + "\n" + body)
    write(tmp_path / "Eval/list_eval_partition.txt", "000001.jpg 0\n000002.jpg 2\n")
    write(tmp_path / "Anno/identity_CelebA.txt", "000001.jpg 7\n000002.jpg 9\n")
    (tmp_path / "Img/img_align_celeba").mkdir(parents=True)
    ds = create_dataset("celeba", tmp_path)
    tr = ds.load("train")
    # FATAUVA order: Attractive, Male, No_Beard, Young, Arched, Bushy, Eyeglasses, Narrow, Mouth open, Smiling
    from facebehavior.data.datasets.celeba import FATAUVA_ATTRIBUTES
    from facebehavior.models.fatauva import ATTRIBUTES

    assert tuple(a.lower() for a in FATAUVA_ATTRIBUTES) == ATTRIBUTES  # the model's output order
    np.testing.assert_array_equal(tr.extra["attributes"][0], [0, 1, 0, 0, 1, 1, 0, 1, 0, 1])
    assert tr.subject.tolist() == ["7"] and ds.load("test").image.tolist() == [
        "Img/img_align_celeba/000002.jpg"
    ]
    bad = write(tmp_path / "Eval/list_eval_partition.txt", "000001.jpg 0\n000002.jpg 5\n")
    with pytest.raises(LabelFormatError) as e:
        ds.load("train")
    assert_format_error(e, bad, 2)


# -------------------------------------------------------------------------------------- manifest
def test_manifest_csv_and_json(tmp_path):
    m = write(tmp_path / "manifest.csv",
              "image,split,subject,expression,valence,arousal,AU01,AU12_intensity,notes\n"
              "a.jpg,train,s1,happiness,0.5,0.1,1,3,x\n"
              "b.jpg,train,s2,,,,-1,,\n"
              "c.jpg,test,s3,2,,,0,0,\n")  # fmt: skip
    ds = create_dataset("manifest", m)
    assert ds.splits == ("train", "test")
    t = ds.load("train")
    assert t.aus == (1, 12) and t.expression.tolist() == [E["happiness"], -1]
    np.testing.assert_array_equal(t.va_mask, [True, False])
    np.testing.assert_array_equal(t.au_mask, [[True, False], [False, False]])
    assert t.au_intensity[0, 1] == 3 and t.au_intensity_mask[0, 1]
    assert ds.load("test").expression.tolist() == [E["disgust"]]
    from facebehavior.data.datasets.manifest import check_subject_exclusive

    check_subject_exclusive(t, ds.load("test"))
    with pytest.raises(ValueError, match="s1"):
        check_subject_exclusive(t, t)
    j = write(tmp_path / "m.json", json.dumps([{"image": "a.jpg", "split": "train", "AU4": 1}]))
    assert create_dataset("manifest", j).load("train").aus == (4,)
    vid = write(tmp_path / "v.csv", "image,split\nclip.mp4,train\n")
    with pytest.raises(LabelFormatError, match="give its 0-based 'frame'") as e:
        create_dataset("manifest", vid).load("train")
    assert_format_error(e, vid, 2)
    bad = write(tmp_path / "bad.csv", "image,split,expression\na.jpg,train,joy\n")
    with pytest.raises(LabelFormatError) as e:
        create_dataset("manifest", bad).load("train")
    assert_format_error(e, bad, 2)


# ------------------------------------------------------------------------------- missing trees
EXPECTED = {
    "afewva": "001/001.json",
    "affectnet": "Manually_Annotated_file_lists/training.csv",
    "affwild": "annotations",
    "affwild2": "cropped_aligned",
    "bp4d": "AU_OCC",
    "bp4d_plus": "AU_OCC",
    "celeba": "list_attr_celeba.txt",
    "cfee": "<subject>_<category",
    "disfa": "ActionUnit_Labels",
    "emotionet": "emotionet_manual.csv",
    "fera2015": "BP4D-training/F001/T1",
    "fera2017": "FERA17_TR_F001_T1.csv",
    "manifest": "manifest.csv",
    "rafdb": "list_patition_label.txt",
    "rafdb_compound": "list_patition_label.txt",
    "semaine": "SEMAINE-Sessions/rec1",
    "facial_expressions": "legend.csv",
}


@pytest.mark.parametrize("name", sorted(set(list_datasets()) - {"fer2013", "ferplus"}))
def test_missing_tree_names_expected_files(tmp_path, name):
    assert name in EXPECTED, f"add {name} to EXPECTED"
    root = tmp_path / "absent"
    with pytest.raises(DatasetNotFoundError) as e:
        ds = create_dataset(name, root)
        ds.load(ds.splits[0])
    assert EXPECTED[name] in str(e.value)
    root.mkdir()
    with pytest.raises(DatasetNotFoundError) as e:
        ds = create_dataset(name, root)
        ds.load(ds.splits[0])
    assert EXPECTED[name] in str(e.value)


def test_facial_expressions_layout_cleaning_and_subject_split(tmp_path):
    """muxspace/facial_expressions: data/legend.csv + images/, labels cleaned, subject-disjoint split."""
    from facebehavior.data.datasets.base import DatasetNotFoundError, LabelFormatError
    from facebehavior.data.datasets.facial_expressions import FacialExpressions, split_of, subject_of
    from facebehavior.registry import DATASETS

    root = tmp_path / "facial_expressions"
    (root / "data").mkdir(parents=True)
    (root / "images").mkdir()
    legend = [
        "user.id,image,emotion",
        "628,facial-expressions_2868588k.jpg,anger",
        "dwdii,George_W_Bush_0001.jpg,HAPPINESS",
        "dwdii,George_W_Bush_0002.jpg,neutral",
        "302,HrithikRoshan_12.jpg,SADNESS",
        "302,HrithikRoshan_12.jpg,sadness",  # listed twice, same label: kept once
        "jhamski,Kimi_Raikkonen_0001.jpg,happiness",
        "jhamski,Kimi_Raikkonen_0001.jpg,neutral",  # conflicting labels: dropped
        "JN721,Avinash_30.jpg,surprise",  # excluded by the corpus' cleaning rule
    ]
    (root / "data" / "legend.csv").write_text("\n".join(legend) + "\n")
    ad = DATASETS.get("facial_expressions")(root)
    assert isinstance(ad, FacialExpressions)
    t = ad.load("all")
    assert list(t.image) == [
        "images/George_W_Bush_0001.jpg",
        "images/George_W_Bush_0002.jpg",
        "images/HrithikRoshan_12.jpg",
        "images/facial-expressions_2868588k.jpg",
    ]
    assert [EXPRESSIONS_8[e] for e in t.expression] == ["happiness", "neutral", "sadness", "anger"]
    assert list(t.subject) == ["George_W_Bush", "George_W_Bush", "HrithikRoshan", "facial-expressions"]
    assert subject_of("Steve_Nash_0005.jpg") == "Steve_Nash" and subject_of("Avinash_1.jpg") == "Avinash"
    train, val = ad.load("train"), ad.load("val")
    assert sorted([*train.image, *val.image]) == sorted(t.image)
    assert not set(train.subject) & set(val.subject)
    for table in (train, val):
        assert all(split_of(s) == table.split for s in table.subject)
    # the rule: sha256(subject) mod 10 in {0, 1} -> val
    import hashlib

    assert split_of("x") == ("val" if int(hashlib.sha256(b"x").hexdigest(), 16) % 10 < 2 else "train")
    (root / "data" / "legend.csv").write_text("user.id,image,emotion\n1,a_1.jpg,joy\n")
    with pytest.raises(LabelFormatError, match="'joy' is not one of"):
        ad.load("all")
    with pytest.raises(DatasetNotFoundError, match="clone"):
        FacialExpressions(tmp_path / "missing")
    with pytest.raises(KeyError, match="unknown split"):
        ad.load("test")
