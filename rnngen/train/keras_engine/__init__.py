"""The Keras training engine (`--engine keras`, and `auto`'s choice where numpy cannot train the
request): Keras 3's fit on its backend, TensorFlow by default, JAX or PyTorch with KERAS_BACKEND.

The only part of rnngen that imports Keras or TensorFlow: the engine the run opens (engine.py), the
session that fits (session.py), the model (model.py), its per-token metrics (metrics.py), devices
and precision (devices.py), tf.distribute strategies (distribution.py), JAX's batch shapes
(shapes.py), the quiet import of Keras (backend.py), and `rnngen export --keras` (export.py).
"""
