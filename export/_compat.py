"""The one adapter to private APIs of tf2onnx and Keras (nothing else in the project touches them).

The exporter needs three things neither library offers publicly:
- tf2onnx `optimizer._get_optimizers()`: the table of graph optimizers, to run only
  the ones that matter for our graphs (`export.onnx_convert`);
- tf2onnx `convert._convert_common(...)`: `from_function`'s conversion step with our
  own optimizer list and `continue_on_error=False` (the public function has neither);
- Keras `ExportArchive._tf_trackable`: the trackable root the SavedModel is written
  from, to attach the manifest as an asset (ExportArchive has no asset hook).

`TESTED_VERSIONS` are the releases this was written against; tests/test_onnx_convert.py
fails on any other installed version with a message naming this file, so an upgrade is
checked here before it can break an export.
"""

from __future__ import annotations

import inspect
from typing import Any

TESTED_VERSIONS = {"tf2onnx": "1.17", "keras": "3.15"}  # major.minor of the releases checked
# Keyword arguments export.onnx_convert passes to tf2onnx.convert._convert_common.
CONVERT_COMMON_ARGUMENTS = (
    "name", "continue_on_error", "opset", "input_names", "output_names", "tensors_to_rename", "optimizers",
)  # fmt: skip


class CompatError(RuntimeError):
    """A private API this adapter uses is gone or changed; the message says what to update."""


def tf2onnx_optimizers() -> dict[str, Any]:
    """tf2onnx's optimizer table: name -> optimizer class (private `optimizer._get_optimizers`)."""
    from tf2onnx import optimizer

    getter = getattr(optimizer, "_get_optimizers", None)
    if getter is None:
        raise CompatError("tf2onnx.optimizer._get_optimizers is gone; update export/_compat.py for this tf2onnx")
    return dict(getter())


def tf2onnx_convert_common(frozen_graph: Any, **arguments: Any) -> tuple[Any, Any]:
    """tf2onnx's conversion of a frozen graph (private `convert._convert_common`); returns (ModelProto, external)."""
    from tf2onnx import convert

    function = getattr(convert, "_convert_common", None)
    if function is None:
        raise CompatError("tf2onnx.convert._convert_common is gone; update export/_compat.py for this tf2onnx")
    return function(frozen_graph, **arguments)


def export_archive_root(archive: Any) -> Any:
    """The trackable root a `keras.export.ExportArchive` writes (private `_tf_trackable`)."""
    root = getattr(archive, "_tf_trackable", None)
    if root is None:
        raise CompatError("keras.export.ExportArchive has no _tf_trackable; update export/_compat.py for this Keras")
    return root


def problems() -> list[str]:
    """What no longer matches the tested private APIs (empty when all is as tested)."""
    import keras
    import tf2onnx
    from tf2onnx import convert, optimizer

    found = []
    for module, installed in (("tf2onnx", tf2onnx.__version__), ("keras", keras.__version__)):
        tested = TESTED_VERSIONS[module]
        if installed.split(".")[:2] != tested.split("."):
            found.append(
                f"{module} {installed} is installed, export/_compat.py was checked against {tested}: check its "
                f"private APIs against {module} {installed}, then update TESTED_VERSIONS"
            )
    if not callable(getattr(optimizer, "_get_optimizers", None)):
        found.append("tf2onnx.optimizer._get_optimizers is gone: update tf2onnx_optimizers in export/_compat.py")
    common = getattr(convert, "_convert_common", None)
    if not callable(common):
        found.append("tf2onnx.convert._convert_common is gone: update tf2onnx_convert_common in export/_compat.py")
    else:
        # It takes some arguments itself and hands the rest (**kwargs) to tfonnx.process_tf_graph.
        from tf2onnx import tfonnx

        parameters = set(inspect.signature(common).parameters) | set(inspect.signature(tfonnx.process_tf_graph).parameters)
        missing = [name for name in CONVERT_COMMON_ARGUMENTS if name not in parameters]
        if missing:
            found.append(f"tf2onnx.convert._convert_common lost arguments {missing}: update export/onnx_convert.py")
    if getattr(keras.export.ExportArchive(), "_tf_trackable", None) is None:
        found.append("keras.export.ExportArchive has no _tf_trackable: update export_archive_root in export/_compat.py")
    return found
