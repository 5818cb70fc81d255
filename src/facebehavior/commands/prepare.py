"""``facebehavior prepare``: detect and align faces once over a corpus split into a training cache.

Example::

    facebehavior prepare disfa /data/DISFA --split fold1_train --split fold1_test -o cache/disfa \\
        --size 112 --workers 2 --option camera=left

writes ``cache/disfa/<split>/`` per split (layout in ``facebehavior.data.cache``); an output
containing ``{split}`` names each split's folder itself (``-o 'cache/disfa200_{split}'``). Interrupted
runs resume: complete shards are skipped. Frames without a face are recorded, and counted in
the summary printed at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from facebehavior.commands import add_option_argument, parse_options

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's options."""
    parser.add_argument("dataset", help="registered dataset name (e.g. disfa, bp4d, affwild2, manifest)")
    parser.add_argument(
        "root", help="corpus root folder in its official layout (manifest: the CSV/JSON file)"
    )
    parser.add_argument("--split", action="append", required=True, help="split to cache (repeatable)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="cache folder: each split goes to OUTPUT/<split>, or to OUTPUT with {split} replaced "
        "(e.g. 'cache/bp4d200_{split}', the recipes' naming)",
    )
    parser.add_argument("--size", type=int, default=112, help="aligned crop side in pixels (default 112)")
    parser.add_argument("--template", default="arcface", help="alignment template (default arcface)")
    parser.add_argument("--margin", type=float, default=None, help="template looseness (default: template's)")
    parser.add_argument("--detector", default="blazeface_short", help="face detector (DETECTORS name)")
    parser.add_argument(
        "--fallback",
        default="blazeface_full",
        help="detector retried where none was found ('none': no retry)",
    )
    parser.add_argument("--score-threshold", type=float, default=None, help="detection threshold")
    parser.add_argument("--shard-size", type=int, default=1024, help="rows per shard (unit of resume)")
    parser.add_argument("--batch-size", type=int, default=32, help="frames per detector call")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes over shards")
    parser.add_argument("--device", default="cpu", help="torch device for detection")
    parser.add_argument(
        "--no-facemesh",
        action="store_true",
        help="align on the detector's keypoints instead of FaceMesh's (as `analyze --no-landmarks`)",
    )
    parser.add_argument(
        "--no-detect",
        action="store_true",
        help="trust the corpus' own face crops (e.g. Aff-Wild2 cropped_aligned): resize only",
    )
    parser.add_argument("--overwrite", action="store_true", help="rebuild complete shards too")
    parser.add_argument(
        "--flow",
        choices=("dis", "tvl1"),
        default=None,
        help="also cache AUNets' optical-flow image of every face (needs OpenCV: the [flow] extra)",
    )
    parser.add_argument(
        "--audio",
        metavar="VIDEOS",
        default=None,
        help="also cache A/V-MT-VGG-GRU's spectrogram image of every face, from the corpus' original "
        "videos (with sound) under this folder (facebehavior.io.audio)",
    )
    parser.add_argument(
        "--audio-size", type=int, default=96, help="spectrogram image side (the model's audio_size)"
    )
    add_option_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Build the cache of every requested split; returns the exit code."""
    from facebehavior.data.cache import CacheConfig, CacheMismatchError, FaceCache, build_cache, build_flow
    from facebehavior.data.datasets import DatasetNotFoundError, LabelFormatError, create_dataset
    from facebehavior.registry import DETECTORS

    try:
        for name in (args.detector, None if args.fallback == "none" else args.fallback):
            if name is not None:
                DETECTORS.get(name)
        config = CacheConfig(
            size=args.size,
            template=args.template,
            margin=args.margin,
            detector=args.detector,
            fallback=None if args.fallback == "none" else args.fallback,
            score_threshold=args.score_threshold,
            shard_size=args.shard_size,
            batch_size=args.batch_size,
            device=args.device,
            facemesh=not args.no_facemesh,
            detect=not args.no_detect,
        )
        adapter = create_dataset(args.dataset, args.root, **parse_options(args.option))
        for split in args.split:
            table = adapter.load(split)
            out = (
                Path(args.output.replace("{split}", split))
                if "{split}" in args.output
                else Path(args.output) / split
            )
            counts = build_cache(adapter, table, out, config, workers=args.workers, overwrite=args.overwrite)
            if args.flow:
                build_flow(out, method=args.flow, overwrite=args.overwrite)
            if args.audio:
                from facebehavior.io.audio import AudioConfig, build_audio

                build_audio(
                    out, args.audio, config=AudioConfig.for_size(args.audio_size), overwrite=args.overwrite
                )
            total = FaceCache(out).summary()
            sys.stdout.write(
                f"{args.dataset}/{split}: {len(table)} rows → {out}: {total['ok']} faces, "
                f"{total['no_face']} without a face, {total['unreadable']} unreadable "
                f"({counts['built']} shards built now, {counts['skipped']} were complete)\n"
            )
    except (
        DatasetNotFoundError,
        LabelFormatError,
        CacheMismatchError,
        KeyError,
        ValueError,
        ImportError,
    ) as e:
        logger.error("%s", e.args[0] if isinstance(e, KeyError) and e.args else e)
        return EXIT_USAGE
    return EXIT_OK
