"""Shared layers of the model zoo: convolution blocks, task heads, rPoly blocks, region layers,
attention and the fully connected CRF. Import from the submodules (e.g. ``facebehavior.nn.crf``)."""
