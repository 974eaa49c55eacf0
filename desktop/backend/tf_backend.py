"""The TensorFlow back end: `export_format.runners.SavedModelRunner` (imports TensorFlow when used).

The SavedModel passes the safety gate before `tf.saved_model.load` runs anything in
it. TensorFlow cannot abort a running signature: Cancel takes effect after the chunk.
`open_backend(path, "tensorflow")` returns an `ExportedSampler` running on it.
"""

from __future__ import annotations

from export_format.runners import SavedModelRunner

__all__ = ["SavedModelRunner"]
