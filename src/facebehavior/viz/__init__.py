"""Plots, overlays and reports as plain functions over the results DataFrame.

Nothing here touches matplotlib's global state at import: each plotting function selects the
non-interactive Agg backend itself, so plotting works on servers without a display.

* ``viz.plots`` — figures: ``plot_timeseries`` (AUs, intensities, expressions, VA, pose per face,
  lines broken where a face is absent), ``plot_geometry`` (``--geometry`` evidence),
  ``plot_blendshapes`` (``bs_*`` heatmaps), ``plot_va_scatter`` (the circumplex), and
  ``plot_results`` (all of them for every source: ``--plot DIR``).
* ``viz.overlay`` — results drawn on pictures: ``draw_overlay`` (one frame), ``annotate_video``,
  ``annotate_image``, ``annotate_results`` (``analyze --annotate``).
* ``viz.report`` — ``write_report``: a self-contained HTML page per source and face
  (``facebehavior report``).
* ``viz.live`` — ``LiveWindow``: analysed frames with the overlay and the measured rate in a
  tkinter window (``analyze --show``); imported on use only, it is the one part that needs a display.
"""

from __future__ import annotations

from facebehavior.viz.overlay import annotate_image, annotate_results, annotate_video, draw_overlay
from facebehavior.viz.plots import (
    plot_blendshapes,
    plot_geometry,
    plot_results,
    plot_timeseries,
    plot_va_scatter,
)
from facebehavior.viz.report import write_report

__all__ = [
    "plot_timeseries",
    "plot_geometry",
    "plot_blendshapes",
    "plot_va_scatter",
    "plot_results",
    "draw_overlay",
    "annotate_image",
    "annotate_video",
    "annotate_results",
    "write_report",
]
