"""Sub-command implementations for ``facebehavior.cli`` (one module per command)."""
