"""Personalised tracking: a listener annotates one song, the model's output layer is adapted to them.

``annotations`` (the curve CSV and its checks), ``head`` (what is adapted, fitted with numpy),
``personalize`` (song + curve -> personal ONNX), ``onnxpatch`` (the file edits, no onnx package),
``server`` (the annotation page). Nothing here imports torch.
"""
