"""AUNets flow models in ``facebehavior analyze`` (pipeline.clips.Clips): a tiny ``aunet_of_*`` and a
tiny π network trained from the CLI on the moving BP4D tree (tests/test_train_flow.py), then run on a
generated video; one row per frame and face with the model's AU column, equal to the model run on
the track's crops and the flow images between consecutive crops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("lightning")
pytest.importorskip("cv2")

from facebehavior.cli import main  # noqa: E402
from facebehavior.pipeline.clips import Clips, needs_clips  # noqa: E402
from test_pipeline_clips import face_video, record_inputs  # noqa: E402
from test_train_flow import _recipe, bp4d_moving  # noqa: E402

FRAMES = 6


@pytest.fixture(scope="module")
def flow_cache(tmp_path_factory):
    """The moving BP4D tree's training fold, prepared with DIS flow (shared by both models)."""
    tmp = tmp_path_factory.mktemp("bp4d_flow")
    root = bp4d_moving(tmp / "BP4D")
    out = tmp / "cache"
    assert main(["prepare", "bp4d", str(root), "--split", "fold1_train", "-o", str(out / "{split}"),
                 "--size", "64", "--no-detect", "--flow", "dis"]) == 0  # fmt: skip
    return root, out / "fold1_train"


@pytest.mark.parametrize(
    "model",
    [
        {"name": "aunet_of_horizontal_tiny", "kwargs": {"au": 12}},
        {"name": "aunet_pi_tiny", "kwargs": {"au": 12, "fusion": "fc7"}},
    ],
    ids=["of_horizontal", "pi_fc7"],
)
def test_flow_model_in_analyze_cli(tmp_path, flow_cache, model):
    from facebehavior.models.transforms import preprocess
    from facebehavior.models.weights import load_weights
    from facebehavior.pipeline import Analyzer
    from facebehavior.temporal.flow import track_flow_images

    root, cache = flow_cache
    sets = {"au": {"dataset": "bp4d", "root": str(root), "split": "fold1_train", "cache": str(cache)}}
    recipe = _recipe(tmp_path / "r.yaml", tmp_path / "run", model, sets, [])
    assert main(["train", str(recipe), "--set", "trainer.max_steps=1"]) == 0
    ckpt = tmp_path / "run" / "t.safetensors"
    assert needs_clips(str(ckpt))

    video = face_video(tmp_path / "clip.mp4", frames=FRAMES)
    csv = tmp_path / "out.csv"
    assert main(["analyze", str(video), "--model", str(ckpt), "-o", str(csv)]) == 0
    df = pd.read_csv(csv)
    assert len(df) == FRAMES and (df["success"] == 1).all() and df["face_id"].nunique() == 1
    prob = df["AU12_prob"].to_numpy()
    assert np.isfinite(prob).all() and ((prob >= 0) & (prob <= 1)).all()

    # The column is the model on each frame's crop and the flow image from the previous crop
    # (batch of 3 frames: the second batch's first flow comes from the first batch's last crop).
    an = Analyzer(model=str(ckpt), batch_size=3)
    stage = an.stage("predict")
    assert isinstance(stage, Clips)
    seen = record_inputs(stage)
    again = an.analyze(str(video))
    assert set(seen[0]) == {"image", "flow"} and len(seen) == 2
    crops = np.concatenate([s["image"] for s in seen])
    flow = np.concatenate([s["flow"] for s in seen])
    assert crops.shape == (FRAMES, 64, 64, 3)
    np.testing.assert_array_equal(flow[1:], track_flow_images(crops)[1:])  # streaming = offline
    np.testing.assert_array_equal(flow[0], track_flow_images(crops[:3])[0])  # first: motion to 2nd
    net, spec = load_weights(ckpt)
    net.eval()
    with torch.no_grad():
        expect = torch.sigmoid(net(preprocess(crops, spec.input), preprocess(flow, spec.input))["au"])
    np.testing.assert_allclose(again["AU12_prob"].to_numpy(), expect[:, 0].numpy(), atol=1e-5)
