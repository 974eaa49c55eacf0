"""The file layout of an export folder and the names that identify it (docs/export.md, "The folder").

```
NAME/
  manifest.json             # the contract's facts (export_format.manifest)
  savedmodel/               # one SavedModel, every endpoint a signature (+ "manifest")
    assets/manifest.json    # a copy of the manifest, written before verification
  onnx/ENDPOINT.onnx        # one graph per endpoint, the manifest in metadata_props["ncsn_manifest"]
```
Where a path is read from a manifest it is relative to the export folder and must stay
inside it (`export_format.safety.confined_path`).
"""

from __future__ import annotations

FORMAT = "ncsn-tf-export"  # manifest["format"]
FORMAT_VERSION = 2  # what the exporter writes; docs/export.md, "Versions"
READABLE_VERSIONS = (1, 2)  # what the readers accept; 1 = before the sampler block named its samplers

MANIFEST_FILE = "manifest.json"
SAVEDMODEL_DIR = "savedmodel"
SAVEDMODEL_MANIFEST = "assets/manifest.json"  # inside the SavedModel folder; the graph never reads it
ONNX_DIR = "onnx"
ONNX_METADATA_KEY = "ncsn_manifest"  # ONNX metadata_props key holding the manifest JSON

FORMATS = ("savedmodel", "onnx")  # what an export may hold
RUNTIMES = ("onnxruntime", "tensorflow")  # who runs it: the ONNX files / the SavedModel
RUNTIME_FORMAT = {"onnxruntime": "onnx", "tensorflow": "savedmodel"}


def onnx_file(endpoint: str) -> str:
    """The path of an endpoint's ONNX file, relative to the export folder."""
    return f"{ONNX_DIR}/{endpoint}.onnx"
