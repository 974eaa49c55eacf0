"""export: SavedModel + ONNX samplers with annealed Langevin dynamics inside the graph.

Library entry points (imported lazily, so that `import export` stays light):
    export_model(config, model, step, out_dir, ...) -> ExportResult
    export_checkpoint(workdir_or_prefix, out_dir, ...) -> ExportResult
    export_toy_mixture(out_dir, ...) -> ExportResult
    load(export_dir, runtime="onnxruntime" | "tensorflow") -> ExportedSampler
`load`, `ExportedSampler` and `ExportInputError` are `export_format`'s (the TF-free
reader every consumer uses). The command line is `ncsn-export` / `python -m export`
(`export.cli`).
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "export_model": "export.exporter",
    "export_checkpoint": "export.exporter",
    "export_toy_mixture": "export.exporter",
    "ExportError": "export.exporter",
    "ExportResult": "export.exporter",
    "load": "export_format",
    "ExportedSampler": "export_format",
    "ExportInputError": "export_format",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
