"""ncsn-desktop: a PySide6 app that samples and inpaints with an exported NCSN model.

Layers (docs/DESIGN.md): `desktop.backend` runs exported files
(manifest + ONNX / SavedModel) and never imports Qt; `desktop.state` holds the
app's state without widgets; `desktop.widgets` bind to the state; inference runs
only in `desktop.workers`. Nothing here imports `ncsn_tf` or `export`.
"""

__version__ = "0.1.0"
