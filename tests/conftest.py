"""Shared test set-up: quiet TensorFlow, offscreen Qt, a CPU-only run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Session-wide exports (toy mixture, tiny digits) for the export tests; see tests/export_fixtures.py.
from export_fixtures import digits_export_dir, digits_workdir, exports_root, toy_export_dir  # noqa: E402, F401
