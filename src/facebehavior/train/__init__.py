"""Training stack: YAML recipes, Lightning module and data module, runner, evaluation.

Only ``facebehavior.train.module`` and ``facebehavior.train.runner`` import Lightning; the
inference path (``Analyzer``, ``load_weights``) never imports this package's Lightning parts.
Nothing is imported here, so ``import facebehavior.train.config`` stays light.
"""
