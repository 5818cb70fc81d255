"""facebehavior.viz plots and overlays: gaps, colours, fixed axes, legends, label sizes, annotated media."""

from __future__ import annotations

import itertools

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebehavior.schema import AU_CATALOGUE, AUS_17, EXPRESSIONS_8
from facebehavior.viz import _common as common
from facebehavior.viz.overlay import (
    _gaze,
    _Panel,
    annotate_image,
    annotate_results,
    annotate_video,
    draw_overlay,
    overlay_font_size,
)
from facebehavior.viz.plots import (
    binned_matrix,
    plot_results,
    timeseries_figure,
    va_scatter_figure,
)

AUS_18 = (*AUS_17, 45)


def results(frames_by_face: dict[int, list[int]], *, source: str = "clip.mp4", fps: float = 10.0, seed=0):
    """A results table with every column family at small, known values (no model needed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for fid, frames in frames_by_face.items():
        for f in frames:
            r = {"source": source, "frame": f, "timestamp": f / fps, "face_id": fid, "success": 1,
                 "x1": 20.0 + 60 * fid, "y1": 20.0, "x2": 60.0 + 60 * fid, "y2": 70.0, "confidence": 0.9,
                 "nose_x": 40.0 + 60 * fid, "nose_y": 45.0,
                 "pose_pitch": 5.0, "pose_yaw": -3.0, "pose_roll": 2.0}  # fmt: skip
            r |= {f"expr_{e}": 0.01 for e in EXPRESSIONS_8} | {"expr_happiness": 0.93}
            r |= {"expression": "happiness"}
            r |= {f"AU{a:02d}_prob": 0.02 + 0.01 * rng.random() for a in AUS_18}
            r |= {"valence": 0.4, "arousal": -0.1}
            rows.append(r)
    return pd.DataFrame(rows)


def cie_lab(hex_colour: str) -> np.ndarray:
    """sRGB (D65) → CIELAB, the textbook formulas."""
    rgb = np.array(common.hex_rgb(hex_colour)) / 255.0
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_lab_reference_values():
    np.testing.assert_allclose(cie_lab("#ffffff"), [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(cie_lab("#ff0000"), [53.24, 80.09, 67.20], atol=0.1)


def test_every_au_has_its_own_distinct_colour():
    assert set(common.AU_COLOURS) == set(AU_CATALOGUE)
    colours = [common.au_colour(a) for a in AU_CATALOGUE]
    assert len(set(colours)) == len(colours)  # AU01 and AU15 no longer share blue
    gaps = [np.linalg.norm(cie_lab(a) - cie_lab(b)) for a, b in itertools.combinations(colours, 2)]
    assert min(gaps) > 20  # CIE76 ΔE: clearly different at a glance (2.3 is a just-noticeable step)
    assert cie_lab("#ffffff")[0] - max(cie_lab(c)[0] for c in colours) > 15  # lines visible on white


def test_with_gaps_breaks_a_track_where_the_face_is_absent():
    f, v = common.with_gaps(np.array([0, 1, 2, 5, 6]), np.array([1.0, 2, 3, 4, 5]), step=1)
    np.testing.assert_array_equal(f, [0, 1, 2, 3.5, 5, 6])
    np.testing.assert_array_equal(np.isnan(v), [0, 0, 0, 1, 0, 0])
    # --every 2: frames 0, 2, 4 are consecutive analysed frames, 4 → 10 is a gap.
    f, v = common.with_gaps(np.array([0, 2, 4, 10]), np.ones((4, 2)), step=2)
    assert np.isnan(v).all(1).tolist() == [False, False, False, True, False]
    assert common.frame_step(np.array([0, 4, 2, 2, 10])) == 2


def test_binned_matrix_marks_absence_and_averages_bins():
    grid = np.arange(10)
    edges, m = binned_matrix(grid, np.array([0, 1, 2, 7]), np.array([[1.0], [3.0], [5.0], [7.0]]), max_bins=5)
    np.testing.assert_allclose(edges, [-0.5, 1.5, 3.5, 5.5, 7.5, 9.5])
    np.testing.assert_allclose(m[0], [2.0, 5.0, np.nan, 7.0, np.nan])  # bins {0,1} {2,3} {4,5} {6,7} {8,9}


def test_timeseries_lines_break_at_gaps_axes_fixed_legends_outside():
    df = results({0: [*range(0, 10), *range(20, 30)], 1: list(range(30))})
    df = pd.concat([df, pd.DataFrame({"source": ["clip.mp4"] * 5, "frame": range(30, 35), "timestamp":
                    np.arange(30, 35) / 10, "face_id": -1, "success": 0})], ignore_index=True)  # fmt: skip
    fig = timeseries_figure(df)
    fig.canvas.draw()
    axes = np.array(fig.axes).reshape(-1, 2)  # rows: AU, expression, VA, pose; columns: faces 0 and 1
    assert [a.get_ylabel() for a in axes[:, 0]] == [
        "AU probability",
        "expression",
        "valence / arousal",
        "head pose (deg)",
    ]
    # Fixed axes although every AU stays within 0.02–0.03: noise must not fill the panel.
    assert axes[0, 0].get_ylim() == (-0.02, 1.02) and axes[2, 0].get_ylim() == (-1.05, 1.05)
    assert axes[3, 0].get_ylim() == (-45.0, 45.0)
    # The x range is the source's (0–3.4 s, including the frames without a face) for every face.
    np.testing.assert_allclose(axes[0, 0].get_xlim(), (0.0, 3.4), atol=1e-9)
    lines = [ln for ln in axes[0, 0].get_lines() if ln.get_label().startswith("AU")]
    assert [ln.get_label() for ln in lines] == [f"AU{a:02d}" for a in AUS_18]
    assert len({ln.get_color() for ln in lines}) == 18
    x, y = lines[0].get_xdata(), lines[0].get_ydata()
    assert len(y) == 21 and np.isnan(y).sum() == 1 and np.isnan(y[10])  # frames 9 → 20: broken
    assert x[9] == pytest.approx(0.9) and x[11] == pytest.approx(2.0)
    assert not np.isnan(axes[0, 1].get_lines()[0].get_ydata()).any()  # face 1 is always there
    # One legend per row, outside (right of) the last column's axes.
    for ax in axes[:, 1]:
        legend = ax.get_legend()
        assert legend is not None
        assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    assert axes[0, 0].get_legend() is None


def test_intensity_panel_uses_the_0_to_5_scale():
    df = results({0: list(range(5))})
    df["AU12_intensity"] = 0.3
    fig = timeseries_figure(df)
    ax = next(a for a in fig.axes if a.get_ylabel() == "AU intensity (0–5)")
    assert ax.get_ylim() == (-0.1, 5.1)


def test_plot_results_adds_geometry_and_blendshape_plots_only_with_data(tmp_path):
    df = results({0: list(range(6))})
    names = sorted(p.name for p in plot_results(df, tmp_path / "a"))
    assert names == ["000_clip_timeseries.png", "va_scatter.png"]  # clip.mp4 does not exist: no overlay
    df["geom_eye_open_r"] = np.linspace(0.2, 0.3, 6)
    df["AU12_intensity_geom"] = 1.0
    df["bs_jawOpen"] = 0.5
    df["bs_mouthSmileLeft"] = np.nan
    names = sorted(p.name for p in plot_results(df, tmp_path / "b"))
    assert names == ["000_clip_blendshapes.png", "000_clip_geometry.png", "000_clip_timeseries.png",
                     "va_scatter.png"]  # fmt: skip
    df["bs_jawOpen"] = np.nan  # video frames under --landmarks auto: all-NaN family → no plot
    assert "000_clip_blendshapes.png" not in {p.name for p in plot_results(df, tmp_path / "c")}


def test_va_scatter_keeps_its_legend_with_many_faces():
    df = results({k: [0, 1] for k in range(40)})
    fig = va_scatter_figure(df)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [f"face {k}" for k in range(40)]
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    assert ax.get_xlim() == (-1.05, 1.05) and ax.get_ylim() == (-1.05, 1.05)
    styles = {(tuple(c.get_facecolor()[0]), c.get_paths()[0].vertices.tobytes()) for c in ax.collections}
    assert len(styles) == 40  # colour × marker: no two faces look the same


def test_overlay_label_size_follows_the_image():
    assert overlay_font_size((1536, 1920, 3)) == 30
    assert overlay_font_size((480, 640, 3)) == 10
    assert overlay_font_size((100, 100, 3)) == 10 and overlay_font_size((8000, 8000, 3)) == 64


def test_overlay_panel_lists_active_aus_and_is_readable_on_a_1920_px_photo():
    row = results({0: [0]}).iloc[0].copy()
    row[["x1", "y1", "x2", "y2", "nose_x", "nose_y"]] = [800.0, 500.0, 1100.0, 900.0, 950.0, 700.0]
    row["AU12_prob"], row["AU06_prob"], row["AU25_prob"], row["AU45_prob"] = 0.91, 0.7, 0.49, 0.55
    df = pd.DataFrame([row])
    panel = _Panel(row, {"expr": common.expression_columns(df), "au": common.au_columns(df), "va": True},
                   30, "expression", 3, 0.5)  # fmt: skip
    assert panel.aus == "AU12 .91  AU06 .70  AU45 .55"  # AU25 (0.49) is below the threshold
    assert panel.head == "id 0  happiness 93%"
    img = draw_overlay(np.zeros((1536, 1920, 3), np.uint8), df)
    # The panel goes right of the box: text rows span about 10 × 30 px there.
    ys = np.flatnonzero((img[:, 1105:1500] > 200).any(axis=(1, 2)))
    assert ys.min() >= 500 and ys.max() - ys.min() > 250
    # Pose axes start at the nose in their colours; yaw < 0 turns the forward (blue) axis right.
    assert (img[690:711, 940:961] == (255, 64, 64)).all(-1).any()
    blue = np.argwhere((img == (80, 150, 255)).all(-1))
    assert len(blue) and blue[:, 1].mean() > 950


def test_overlay_draws_landmark_columns_and_gaze_rays():
    df = results({0: [0]})
    df["x_0"], df["y_0"], df["x_1"], df["y_1"] = 30.0, 60.0, 50.0, 60.0
    df[["iris_right_x", "iris_right_y", "iris_left_x", "iris_left_y"]] = [30.0, 35.0, 50.0, 35.0]
    df["gaze_angle_x"], df["gaze_angle_y"] = 0.3, 0.2
    rays = _gaze(df.iloc[0])
    assert len(rays) == 2 and rays[0][0] == (30.0, 35.0)
    dx, dy = rays[0][1]
    np.testing.assert_allclose((dx, dy), np.array([np.tan(0.3), np.tan(0.2)]) / np.sqrt(1 + np.tan(0.3) ** 2
                               + np.tan(0.2) ** 2))  # fmt: skip
    img = draw_overlay(np.zeros((120, 160, 3), np.uint8), df, panel=False)
    assert tuple(img[60, 30]) == (255, 255, 255) and tuple(img[60, 50]) == (255, 255, 255)
    assert (img == (255, 220, 0)).all(-1).sum() > 10  # gaze rays


def test_rows_without_a_face_are_not_drawn():
    df = pd.DataFrame({"face_id": [-1], "success": [0], "x1": [np.nan], "y1": [np.nan], "x2": [np.nan],
                       "y2": [np.nan]})  # fmt: skip
    img = np.full((50, 50, 3), 7, np.uint8)
    np.testing.assert_array_equal(draw_overlay(img, df), img)


def write_video(path, n: int, size=(96, 128)) -> np.ndarray:
    h, w = size
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[:] = np.linspace(40, 160, w, dtype=np.uint8)[None, None, :, None]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode(None))
    return frames


def decode(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_annotated_video_keeps_every_frame_and_marks_those_with_faces(tmp_path):
    src = tmp_path / "in.mp4"
    write_video(src, 12)
    rows = results({0: [0, 1, 2, 3, 5, 6, 7, 8]}, source=str(src), fps=25)  # absent at 4 and 9–11
    out = annotate_video(src, rows, tmp_path / "out.mp4")
    before, after = decode(src).astype(np.int16), decode(out).astype(np.int16)
    assert after.shape == before.shape == (12, 96, 128, 3)
    diff = np.abs(after - before).mean(axis=(1, 2, 3))
    annotated = [0, 1, 2, 3, 5, 6, 7, 8]
    assert diff[annotated].min() > 4 * diff[[4, 9, 10, 11]].max()
    assert diff[[4, 9, 10, 11]].max() < 1.5  # copied: only the second encoding's loss
    # Face 0's red box edge on the grey input (yuv420p smears a 1-px line's colour, not its hue).
    edge, grey = after[0, 19:22, 25:55], before[0, 19:22, 25:55]
    assert (edge[..., 0] - edge[..., 1]).max() > 50 and np.abs(grey[..., 0] - grey[..., 1]).max() < 10
    held = decode(annotate_video(src, rows, tmp_path / "held.mp4", hold=1)).astype(np.int16)
    assert np.abs(held[4] - before[4]).mean() > 4 * diff[4] and np.abs(held[9] - before[9]).mean() > 1
    assert np.abs(held[10] - before[10]).mean() < 1.5  # hold=1 covers frame 9 only
    with pytest.raises(ValueError, match="annotated videos are written as"):
        annotate_video(src, rows, tmp_path / "out.gif")
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_annotated_image_and_a_folder_of_sources(tmp_path):
    img = np.full((240, 320, 3), 120, np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(img).save(tmp_path / "b.jpg", quality=95)
    rows = pd.concat([results({0: [0]}, source=str(tmp_path / "a.png")),
                      results({0: [0], 1: [0]}, source=str(tmp_path / "b.jpg"))])  # fmt: skip
    out = np.asarray(Image.open(annotate_image(tmp_path / "a.png", rows, tmp_path / "a_out.png")))
    assert out.shape == img.shape
    assert (out[20:71, 20] == (230, 25, 75)).all(-1).all()  # the box's left edge
    errors = []
    written = annotate_results(rows, [str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), "webcam:0"],
                               tmp_path / "annotated", on_error=errors.append)  # fmt: skip
    assert [p.name for p in written] == ["a.annotated.png", "b.annotated.jpg"]
    assert len(errors) == 1 and "webcam" in str(errors[0])
    b = np.asarray(Image.open(written[1])).astype(int)
    edge = b[20:71, 79:82]  # face 1's green box, left edge at x = 80 (JPEG smears a 1-px line's colour)
    assert ((edge[..., 1] - edge[..., 0]).max(1) > 40).sum() > 40


@pytest.fixture
def squares(monkeypatch):
    import facebehavior.face.detect as detect
    from test_pipeline import SquareDetector

    monkeypatch.setattr(detect, "create_detector", lambda name, **kw: SquareDetector())


FAST = ["--detector", "blazeface_short", "--no-landmarks", "--model", "none", "--no-progress"]


def test_analyze_annotate(tmp_path, squares, capsys):
    from facebehavior.cli import main
    from test_pipeline import square_frames
    from test_pipeline import write_video as write_square_video

    write_square_video(tmp_path / "v.mp4", square_frames(10, missing=(4,)))
    write_square_video(tmp_path / "w.mp4", square_frames(6))
    code = main(["analyze", str(tmp_path / "v.mp4"), "-o", str(tmp_path / "o.csv"), "--annotate",
                 str(tmp_path / "v_annotated.mp4"), *FAST])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    frames = decode(tmp_path / "v_annotated.mp4").astype(int)
    assert len(frames) == 10
    ref = decode(tmp_path / "v.mp4").astype(int)
    assert np.abs(frames[0] - ref[0]).mean() > 3 * np.abs(frames[4] - ref[4]).mean()
    inputs = [str(tmp_path / "v.mp4"), str(tmp_path / "w.mp4")]
    assert main(["analyze", *inputs, "-o", str(tmp_path / "p.csv"), "--annotate", str(tmp_path / "x.mp4"),
                 *FAST]) == 2  # fmt: skip
    assert "2 inputs need a folder" in capsys.readouterr().err
    ann = str(tmp_path / "ann")
    assert main(["analyze", *inputs, "-o", str(tmp_path / "p.csv"), "--annotate", ann, *FAST]) == 0
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["v.annotated.mp4", "w.annotated.mp4"]
    assert len(decode(tmp_path / "ann" / "w.annotated.mp4")) == 6
