"""ONNX export, parity checks and the model metadata contract.

Only :mod:`emotrack.export.metadata` is torch-free (the runtime reads it); :mod:`emotrack.export.onnx`
needs the ``train`` extra.
"""
