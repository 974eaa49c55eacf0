"""Find an export's manifest and files from whatever a user points at.

An export folder (with `manifest.json`), its `manifest.json`, one of its `.onnx`
files, its SavedModel folder (or `saved_model.pb`), a lone `.onnx` file carrying the
manifest in its metadata, or a lone SavedModel carrying it as an asset. Every path
taken from a manifest goes through `safety.confined_path` (no absolute paths, no
`..`, no symlinks out of the folder); ONNX files are parsed only through the gate
(`safety.load_onnx_checked`). A file the manifest lists but that is absent makes its
runtime unavailable (`ExportFiles.runtimes`), it is not an error by itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export_format import layout, limits, safe_json
from export_format import manifest as manifest_io
from export_format.endpoints import INPAINTING_ENDPOINTS, SAMPLING_ENDPOINTS
from export_format.errors import ExportFormatError, ManifestError, RuntimeMissingError
from export_format.manifest import Manifest


@dataclass(frozen=True)
class ExportFiles:
    """An export's manifest and the files present for each runtime.

    Attributes:
        source: what was opened.
        manifest: the validated manifest.
        onnx: endpoint -> existing .onnx file (confined to the export folder).
        savedmodel: the SavedModel folder (confined), or None when absent.
    """

    source: Path
    manifest: Manifest
    onnx: dict[str, Path] = field(default_factory=dict)
    savedmodel: Path | None = None

    def runtimes(self) -> list[str]:
        """Runtimes whose files are here, in `layout.RUNTIMES` order (ONNX Runtime first)."""
        available = []
        if all(name in self.onnx for name in SAMPLING_ENDPOINTS):
            available.append("onnxruntime")
        if self.savedmodel is not None:
            available.append("tensorflow")
        return available

    def can_inpaint(self, runtime: str) -> bool:
        """Whether `runtime` has the inpainting endpoints in these files."""
        if runtime == "onnxruntime":
            return all(name in self.onnx for name in INPAINTING_ENDPOINTS)
        return self.savedmodel is not None

    def require(self, runtime: str) -> None:
        """Nothing when `runtime` can run these files; else `RuntimeMissingError` (never a silent switch).

        Raises:
            ValueError: `runtime` is not one of `layout.RUNTIMES`.
            RuntimeMissingError: its files are absent; `.available` lists the runtimes that are there.
        """
        if runtime not in layout.RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(layout.RUNTIMES)}")
        available = tuple(self.runtimes())
        if runtime in available:
            return
        if not available:
            message = (
                f"{self.source} has neither a SavedModel nor the ONNX files {' + '.join(SAMPLING_ENDPOINTS)}; "
                "re-export the model with `python -m export`"
            )
        elif runtime == "onnxruntime":
            message = f"{self.source} has no ONNX files; open it with TensorFlow or re-export with --format both"
        else:
            message = f"{self.source} has no SavedModel; open it with ONNX Runtime or re-export with --format both"
        raise RuntimeMissingError(message, wanted=runtime, available=available)

    def choose_runtime(self, preferred: str) -> str:
        """`preferred` when its files are here (else `RuntimeMissingError`, see `require`)."""
        self.require(preferred)
        return preferred


def onnx_metadata(model: Any) -> dict[str, str]:
    """The `metadata_props` of an ONNX model as a dict of strings."""
    return {entry.key: entry.value for entry in model.metadata_props}


def _is_savedmodel(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file()


def _from_export_folder(root: Path, source: Path) -> ExportFiles:
    from export_format.safety import confined_path

    manifest = manifest_io.read(root)
    onnx = {}
    for endpoint, relative in manifest.files.onnx.items():
        path = confined_path(root, relative, f"files.onnx.{endpoint}")
        if path.is_file():
            onnx[endpoint] = path
    savedmodel = None
    if manifest.files.savedmodel is not None:
        candidate = confined_path(root, manifest.files.savedmodel, "files.savedmodel")
        if _is_savedmodel(candidate):
            savedmodel = candidate
    return ExportFiles(source=source, manifest=manifest, onnx=onnx, savedmodel=savedmodel)


def _from_onnx_file(path: Path) -> ExportFiles:
    from export_format.safety import confined_path, load_onnx_checked

    # Inside an export (NAME/onnx/x.onnx beside NAME/manifest.json): the whole export.
    for root in (path.parent.parent, path.parent):
        if (root / layout.MANIFEST_FILE).is_file():
            files = _from_export_folder(root, path)
            if path.resolve() in {p.resolve() for p in files.onnx.values()}:
                return files
    # A lone .onnx file: the manifest is embedded; sibling endpoints sit beside it.
    model = load_onnx_checked(path)
    text = onnx_metadata(model).get(layout.ONNX_METADATA_KEY)
    if text is None:
        raise ManifestError(
            f"{path} carries no ncsn-tf manifest (metadata_props[{layout.ONNX_METADATA_KEY!r}]) and has no "
            f"{layout.MANIFEST_FILE} nearby; open a model written by `python -m export`"
        )
    manifest = manifest_io.loads(text, str(path))
    onnx = {}
    for endpoint, relative in manifest.files.onnx.items():
        sibling = confined_path(path.parent, Path(relative).name, f"files.onnx.{endpoint}")
        if sibling.is_file():
            onnx[endpoint] = sibling
    return ExportFiles(source=path, manifest=manifest, onnx=onnx, savedmodel=None)


def _from_savedmodel_folder(folder: Path) -> ExportFiles:
    from export_format.safety import confined_path

    parent = folder.parent
    if (parent / layout.MANIFEST_FILE).is_file():
        files = _from_export_folder(parent, folder)
        if files.savedmodel is not None and files.savedmodel.resolve() == folder.resolve():
            return files
    asset = confined_path(folder, layout.SAVEDMODEL_MANIFEST, "the manifest asset")
    if not asset.is_file():
        raise ManifestError(
            f"SavedModel {folder} has no manifest (no {layout.MANIFEST_FILE} beside it or in its assets); "
            "open a model written by `python -m export`"
        )
    try:
        data = safe_json.load(asset, max_bytes=limits.MAX_MANIFEST_BYTES)
    except safe_json.JsonLimitError as error:
        raise ManifestError(f"{error}{manifest_io.REEXPORT}") from None
    return ExportFiles(source=folder, manifest=manifest_io.parse(data, str(asset)), onnx={}, savedmodel=folder)


def locate(location: str | os.PathLike[str]) -> ExportFiles:
    """The export behind a path.

    Args:
        location: an export folder, its manifest.json, an exported `.onnx` file, a
            SavedModel folder or its saved_model.pb.

    Returns:
        The manifest and the files present for each runtime.

    Raises:
        ExportFormatError: the path is missing or is not a model.
        ManifestError: no valid manifest.
        UnsafeExportError: a manifest path leaves the folder, or an ONNX file is refused by the gate.
    """
    path = Path(location).expanduser()
    if not path.exists():
        raise ExportFormatError(f"model not found: {path}")
    if path.is_dir():
        if (path / layout.MANIFEST_FILE).is_file():
            return _from_export_folder(path, path)
        if _is_savedmodel(path):
            return _from_savedmodel_folder(path)
        raise ExportFormatError(
            f"{path} is neither an export folder (with {layout.MANIFEST_FILE}) nor a SavedModel folder; "
            "choose the folder `python -m export` wrote"
        )
    if path.suffix.lower() == ".onnx":
        return _from_onnx_file(path)
    if path.name == layout.MANIFEST_FILE:
        return _from_export_folder(path.parent, path.parent)
    if path.name == "saved_model.pb":
        return _from_savedmodel_folder(path.parent)
    raise ExportFormatError(
        f"{path.name} is not a model; open an exported .onnx file, a SavedModel folder or an export folder"
    )
