"""Face-crop cache: build on a tiny manifest corpus made from the repo's real photo, read it back."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebehavior.data.cache import (
    STATUS_NO_FACE,
    STATUS_OK,
    STATUS_UNREADABLE,
    CacheConfig,
    CacheMismatchError,
    FaceCache,
    build_cache,
    load_table,
    save_table,
)
from facebehavior.data.datasets import create_dataset
from facebehavior.face.align import template_points
from facebehavior.schema import EXPRESSIONS_8

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "face.jpg"
# Hand-read from the photo (four people): crops that hold exactly one face each.
ONE_FACE_CROPS = {"left.jpg": (80, 430, 60, 290), "mid.jpg": (140, 360, 270, 480)}
LARGEST_FACE = (572, 179, 727, 334)  # x1, y1, x2, y2 of the largest face of the full photo


def make_corpus(root: Path) -> Path:
    """A manifest corpus: two one-face crops, the full photo, a face-less image, a corrupt file."""
    root.mkdir(parents=True, exist_ok=True)
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    for name, (y0, y1, x0, x1) in ONE_FACE_CROPS.items():
        Image.fromarray(photo[y0:y1, x0:x1]).save(root / name)
    Image.fromarray(photo).save(root / "group.jpg")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((96, 128)) * 30 + 100).astype(np.uint8)).convert("RGB").save(
        root / "blank.png"
    )
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    rows = [
        "image,split,subject,expression,valence,arousal,AU12",
        "left.jpg,train,s1,happiness,0.5,0.2,1",
        "blank.png,train,s2,neutral,,,0",
        "mid.jpg,train,s3,,,,1",
        "broken.jpg,train,s4,sadness,,,",
        "group.jpg,train,s5,surprise,,,0",
    ]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    ds = create_dataset("manifest", make_corpus(root))
    table = ds.load("train")
    out = root / "cache"
    config = CacheConfig(size=112, shard_size=2, batch_size=4)
    counts = build_cache(ds, table, out, config)
    return ds, table, out, config, counts


def test_cache_contents(built):
    ds, table, out, config, counts = built
    assert counts == {"shards": 3, "skipped": 0, "built": 3, "ok": 3, "no_face": 1, "unreadable": 1}
    cache = FaceCache(out)
    assert cache.summary() == {"ok": 3, "no_face": 1, "unreadable": 1}
    assert cache.status.tolist() == [STATUS_OK, STATUS_NO_FACE, STATUS_OK, STATUS_UNREADABLE, STATUS_OK]
    assert len(cache) == 3 and cache.table.image.tolist() == ["left.jpg", "mid.jpg", "group.jpg"]
    assert cache.missing().image.tolist() == ["blank.png", "broken.jpg"]  # recorded, not dropped
    # Crops are aligned: keypoints land near the ArcFace template (least-squares residual only).
    ref = template_points("arcface", 112)
    err = np.linalg.norm(cache.aligned_keypoints - ref[None], axis=-1)
    assert err.mean() < 4.0, err
    # Alignment used FaceMesh's 5 points (as the Analyzer does): they are the aligned keypoints.
    from facebehavior.face.landmarks.facemesh import keypoints5

    assert (cache.index["mesh_presence"][cache.found] > 0.5).all()
    mesh = np.stack([cache.mesh(i) for i in range(len(cache))])
    assert mesh.shape == (3, 468, 2) and np.isfinite(mesh).all()
    assert ((mesh > -10) & (mesh < 122)).mean() > 0.95  # the face mesh lies on the crop
    np.testing.assert_allclose(keypoints5(mesh), cache.aligned_keypoints, atol=0.1)
    # The full photo keeps its largest face.
    np.testing.assert_allclose(cache.index["box"][4], LARGEST_FACE, atol=6)
    item = cache[0]
    assert item["image"].shape == (112, 112, 3) and item["image"].dtype == np.uint8
    assert item["image"].std() > 10  # a real face, not the black placeholder
    assert item["expression"] == EXPRESSIONS_8.index("happiness") and item["va_mask"]
    np.testing.assert_allclose(item["va"], [0.5, 0.2])
    assert item["au"].tolist() == [1.0] and item["au_mask"].tolist() == [True]
    assert cache[2]["expression"] == EXPRESSIONS_8.index("surprise")
    # The crop equals a warp of the source image by the stored matrix.
    from facebehavior.face.align import warp_faces

    src = np.asarray(Image.open(Path(table.root) / "left.jpg").convert("RGB"))
    again = warp_faces(src[None], np.zeros(1, np.int64), cache.index["matrix"][[0]].astype(np.float64), 112)
    assert np.abs(again[0].astype(int) - cache.crop(0).astype(int)).max() <= 1
    # Adapter protocol, so the training data module can read crops like any corpus.
    assert cache.read_images(cache.table, [1])[0].shape == (112, 112, 3)
    import pickle

    import torch

    payload = pickle.dumps(cache)  # what spawned DataLoader workers receive
    assert len(payload) < 3 * 112 * 112 * 3  # paths and index, not the crops
    np.testing.assert_array_equal(pickle.loads(payload).crop(2), cache.crop(2))
    loader = torch.utils.data.DataLoader(cache, batch_size=3)
    batch = next(iter(loader))
    assert tuple(batch["image"].shape) == (3, 112, 112, 3)


def test_resume_skips_finished_shards(built):
    ds, table, out, config, _ = built
    crops0 = out / "shard_00000.crops.npy"
    stamp = crops0.stat().st_mtime_ns
    os.utime(crops0, ns=(stamp - 10**9, stamp - 10**9))
    stamp = crops0.stat().st_mtime_ns
    again = build_cache(ds, table, out, config)
    assert again["skipped"] == 3 and again["built"] == 0
    (out / "shard_00001.done").unlink()
    with pytest.raises(CacheMismatchError, match="incomplete"):
        FaceCache(out)
    partial = build_cache(ds, table, out, config)
    assert partial["skipped"] == 2 and partial["built"] == 1
    assert (partial["ok"], partial["unreadable"]) == (1, 1)  # shard 1 = rows 2, 3: mid.jpg, broken.jpg
    assert crops0.stat().st_mtime_ns == stamp  # finished shard untouched
    assert FaceCache(out).summary() == {"ok": 3, "no_face": 1, "unreadable": 1}


def test_settings_change_is_refused(built, tmp_path):
    ds, table, out, config, _ = built
    with pytest.raises(CacheMismatchError, match="other settings"):
        build_cache(ds, table, out, CacheConfig(size=96, shard_size=2))
    with pytest.raises(FileNotFoundError, match="facebehavior prepare"):
        FaceCache(tmp_path)
    with pytest.raises(CacheMismatchError, match="other settings or for other rows"):
        build_cache(ds, table.subset(np.arange(4)), out, config)  # other rows
    # New labels for the same rows: nothing is re-detected, the stored labels are replaced.
    from dataclasses import replace

    relabelled = replace(table, expression=np.full(len(table), 3, np.int64))
    assert build_cache(ds, relabelled, out, config)["built"] == 0
    assert FaceCache(out)[0]["expression"] == 3
    assert build_cache(ds, table, out, config)["built"] == 0


def test_annotated_face_box_picks_the_labelled_face(built, tmp_path):
    ds, table, _, _, _ = built
    from dataclasses import replace

    group = table.subset(np.array([4, 4]))  # the four-person photo, twice
    boxes = np.array([[111, 259, 241, 389], [20, 600, 90, 700]], np.float32)  # a face; no face
    boxed = replace(group, extra={"face_box": boxes})
    counts = build_cache(ds, boxed, tmp_path / "boxed", CacheConfig(facemesh=False, fallback=None))
    assert (counts["ok"], counts["no_face"]) == (1, 1)  # no bystander inherits the second label
    cache = FaceCache(tmp_path / "boxed")
    np.testing.assert_allclose(cache.index["box"][0], boxes[0], atol=8)  # not the largest face


def test_grayscale_corpus_and_table_roundtrip(built, tmp_path):
    ds, table, _, _, _ = built

    class Gray:
        def read_images(self, t, index):
            return [
                np.asarray(im).mean(-1, keepdims=True).astype(np.uint8) for im in ds.read_images(t, index)
            ]

    sub = table.subset(np.array([0]))
    counts = build_cache(Gray(), sub, tmp_path / "gray", CacheConfig(size=64, fallback=None, facemesh=False))
    assert counts["ok"] == 1
    gray = FaceCache(tmp_path / "gray")
    assert gray.mesh(0) is None and "mesh" not in gray[0]
    # Without FaceMesh the crop is aligned on the detector's own keypoints.
    np.testing.assert_allclose(
        gray.aligned_keypoints[0],
        np.einsum("ij,pj->pi", gray.index["matrix"][0][:, :2], gray.index["kp5"][0])
        + gray.index["matrix"][0][:, 2],
        atol=1e-3,
    )
    crop = gray.crop(0)
    assert crop.shape == (64, 64, 3) and (crop[..., 0] == crop[..., 2]).all()
    # Trusting the corpus' own crops: resized as they are, keypoints unknown.
    own = build_cache(
        ds, table.subset(np.array([0, 1])), tmp_path / "own", CacheConfig(size=32, detect=False)
    )
    assert own["ok"] == 2  # no detection: even the face-less image is kept
    oc = FaceCache(tmp_path / "own")
    src = np.asarray(Image.open(Path(table.root) / "blank.png").convert("RGB"))
    assert oc.crop(1).shape == (32, 32, 3) and abs(float(oc.crop(1).mean()) - float(src.mean())) < 1
    assert np.isnan(oc.aligned_keypoints).all()
    save_table(table, tmp_path / "t.npz")
    back = load_table(tmp_path / "t.npz")
    for f in ("image", "subject", "expression", "au_occurrence", "au_mask", "va", "va_mask"):
        np.testing.assert_array_equal(getattr(back, f), getattr(table, f))
    assert back.aus == table.aus and back.corpus == table.corpus


def test_parallel_workers_match_serial(built, tmp_path):
    ds, table, out, _, _ = built
    config = CacheConfig(size=112, shard_size=2, batch_size=4)  # the serial cache's settings
    counts = build_cache(ds, table, tmp_path / "par", config, workers=2)
    assert counts["built"] == 3 and counts["ok"] == 3
    serial, par = FaceCache(out), FaceCache(tmp_path / "par")
    np.testing.assert_array_equal(par.status, serial.status)
    for i in range(len(serial)):
        np.testing.assert_array_equal(par.crop(i), serial.crop(i))
