"""Training, evaluation and checkpoints (needs the ``train`` extra)."""
