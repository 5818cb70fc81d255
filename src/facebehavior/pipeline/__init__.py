"""The analysis pipeline: frames → faces → landmarks → aligned crops → affect predictions → rows.

``Analyzer`` (``pipeline.analyzer``) reads images, videos and webcams in batches of frames and runs
a list of stages on each batch, every stage one small object with one protocol
(``pipeline.base.Stage``: ``Batch → Batch``, plus the ``columns()`` it adds):

1. **faces** — ``Detect`` (``pipeline.detect``): BlazeFace short-range on the batch and, only for the
   frames in which it found nothing or only small faces, full-range, then tiles for crowds
   (``docs/pipeline.md`` has the measurements behind this). With landmarks, ``TrackLandmarks``
   (``pipeline.landmarks``) instead: Face Mesh on every frame, each face tracked from its previous
   landmarks as in MediaPipe, the detector run on key frames and for lost faces only.
2. **screen** — faces with non-finite or coincident keypoints are dropped and recorded.
3. **track** — a ``face_id`` per person across frames (``face.track``).
4. **measure** — head pose, iris centres, blendshapes, geometric AU evidence.
5. **predict** — the affect model: each face aligned to the template of the model's ``WeightSpec``,
   preprocessed by the one path driven by that spec, run in one call per batch.

Rows (``pipeline.rows``) are assembled at the end; frames in which no face is found produce no rows
and are counted per chunk (``Chunk.no_face``).
"""

from facebehavior.pipeline.analyzer import Analyzer, analyze
from facebehavior.pipeline.base import Batch, Chunk, Faces, SkippedFace, SourceState, Stage, Timed

__all__ = ["Analyzer", "Batch", "Chunk", "Faces", "SkippedFace", "SourceState", "Stage", "Timed", "analyze"]
