"""export_format: the export folder's contract as code, with no TensorFlow, Keras, ncsn_tf or Qt.

Every reader of an export (the exporter's verification, `export.runtime`, the
desktop app, `ncsn_tf.evaluate`) goes through this package; docs/DESIGN.md
shows the layering. It is a top-level package, not `export.format`, because
`ncsn_tf` reads exports (evaluation) and must not import `export`, which
imports `ncsn_tf`.

| module | concern |
|---|---|
| `layout` | file names, format name and versions, runtimes |
| `endpoints` | the endpoint table: names, inputs, outputs, dtypes, shapes |
| `settings` | `SamplerSettings`: the samplers, their settings and ranges, one validation |
| `manifest` | `Manifest`: the one reader/writer of manifest.json (`read`, `loads`, `write`) |
| `locate` | `locate(path) -> ExportFiles`: the manifest and files behind a user's path |
| `safety` | the gate every loader calls before a file is loaded or run |
| `runners` | `OnnxRunner`, `SavedModelRunner` (their runtimes imported lazily, only there) |
| `sampler` | `ExportedSampler` / `load`: the endpoints as checked Python methods |
| `limits`, `errors`, `safe_json` | shared bounds, the error classes, bounded JSON parsing |

Importing this package imports NumPy only (tests/test_export_format.py checks it).
"""

from export_format.errors import (
    DivergedError,
    ExportFormatError,
    ExportInputError,
    ManifestError,
    RunInterrupted,
    RuntimeMissingError,
    UnsafeExportError,
)
from export_format.locate import ExportFiles, locate
from export_format.manifest import Manifest, SamplerBlock
from export_format.manifest import read as read_manifest
from export_format.sampler import Chunk, ExportedSampler, load
from export_format.settings import SAMPLERS, SamplerSettings

__all__ = [
    "SAMPLERS",
    "Chunk",
    "DivergedError",
    "ExportFiles",
    "ExportFormatError",
    "ExportInputError",
    "ExportedSampler",
    "Manifest",
    "ManifestError",
    "RunInterrupted",
    "RuntimeMissingError",
    "SamplerBlock",
    "SamplerSettings",
    "UnsafeExportError",
    "load",
    "locate",
    "read_manifest",
]
