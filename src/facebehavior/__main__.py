"""``python -m facebehavior``: the command-line interface (same as the ``facebehavior`` command)."""

from facebehavior.cli import main

raise SystemExit(main())
