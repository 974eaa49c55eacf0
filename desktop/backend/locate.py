"""Find an export's files and manifest from whatever the user opened.

Users open an exported `.onnx` file, a SavedModel folder, or the export folder
holding both (docs/DESIGN.md, "The export contract"):

```
NAME/manifest.json   NAME/savedmodel/   NAME/onnx/ENDPOINT.onnx
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from desktop.backend.errors import ModelError
from desktop.backend.manifest import (
    INPAINTING_ENDPOINTS,
    SAMPLING_ENDPOINTS,
    Manifest,
    parse_manifest_text,
)

MANIFEST_FILE = "manifest.json"
MANIFEST_METADATA_KEY = "ncsn_manifest"
RUNTIMES = ("onnxruntime", "tensorflow")


@dataclass(frozen=True)
class ModelFiles:
    """An export's manifest and the files present for each runtime.

    Attributes:
        source: what the user opened.
        manifest: the validated manifest.
        onnx: endpoint name -> existing .onnx file.
        savedmodel: the SavedModel folder, or None when absent.
    """

    source: Path
    manifest: Manifest
    onnx: dict[str, Path] = field(default_factory=dict)
    savedmodel: Path | None = None

    def runtimes(self) -> list[str]:
        """Runtimes that can sample with these files, preferred first."""
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

    def choose_runtime(self, preferred: str) -> str:
        """`preferred` when its files exist, else the other one.

        Raises:
            ModelError: neither runtime has the files it needs.
        """
        available = self.runtimes()
        if not available:
            raise ModelError(
                f"{self.source} has neither a SavedModel nor initial_images.onnx + sample_levels.onnx; "
                "re-export the model"
            )
        return preferred if preferred in available else available[0]


def _is_savedmodel(folder: Path) -> bool:
    return (folder / "saved_model.pb").is_file()


def _inside_folder(root: Path, relative: str, what: str) -> Path:
    """root/relative, refusing paths that leave `root` (a manifest is untrusted data)."""
    if os.path.isabs(relative) or any(part == ".." for part in Path(relative).parts):
        raise ModelError(f"manifest of {root}: {what} path {relative!r} leaves the export folder; refusing it")
    return root / relative


def _from_export_folder(root: Path, source: Path) -> ModelFiles:
    manifest_path = root / MANIFEST_FILE
    try:
        manifest = parse_manifest_text(manifest_path.read_bytes(), str(manifest_path))
    except OSError as error:
        raise ModelError(f"cannot read {manifest_path} ({error.strerror})") from error
    onnx = {}
    for endpoint, relative in manifest.onnx_files.items():
        path = _inside_folder(root, relative, f"onnx file of {endpoint!r}")
        if path.is_file():
            onnx[endpoint] = path
    savedmodel = None
    if manifest.savedmodel_dir is not None:
        candidate = _inside_folder(root, manifest.savedmodel_dir, "savedmodel")
        if _is_savedmodel(candidate):
            savedmodel = candidate
    return ModelFiles(source=source, manifest=manifest, onnx=onnx, savedmodel=savedmodel)


def _from_onnx_file(path: Path) -> ModelFiles:
    # Inside an export (NAME/onnx/x.onnx beside NAME/manifest.json): use the whole export.
    for root in (path.parent.parent, path.parent):
        if (root / MANIFEST_FILE).is_file():
            files = _from_export_folder(root, path)
            if path.resolve() in {p.resolve() for p in files.onnx.values()}:
                return files
    # A lone .onnx file: the manifest is embedded; sibling endpoints sit beside it.
    from desktop.backend.safety import load_onnx_checked, onnx_metadata

    model = load_onnx_checked(path)
    text = onnx_metadata(model).get(MANIFEST_METADATA_KEY)
    if text is None:
        raise ModelError(
            f"{path} carries no ncsn-tf manifest (metadata_props[{MANIFEST_METADATA_KEY!r}]) and has no "
            f"{MANIFEST_FILE} nearby; open a model written by the ncsn-tf exporter"
        )
    manifest = parse_manifest_text(text, str(path))
    onnx = {}
    for endpoint, relative in manifest.onnx_files.items():
        sibling = path.parent / Path(relative).name
        if sibling.is_file():
            onnx[endpoint] = sibling
    return ModelFiles(source=path, manifest=manifest, onnx=onnx, savedmodel=None)


def _from_savedmodel_folder(folder: Path) -> ModelFiles:
    parent = folder.parent
    if (parent / MANIFEST_FILE).is_file():
        files = _from_export_folder(parent, folder)
        if files.savedmodel is not None and files.savedmodel.resolve() == folder.resolve():
            return files
    asset = folder / "assets" / MANIFEST_FILE
    if not asset.is_file():
        raise ModelError(
            f"SavedModel {folder} has no manifest (no {MANIFEST_FILE} beside it or in its assets); "
            "open a model written by the ncsn-tf exporter"
        )
    manifest = parse_manifest_text(asset.read_bytes(), str(asset))
    return ModelFiles(source=folder, manifest=manifest, onnx={}, savedmodel=folder)


def locate_model(location: str | os.PathLike[str]) -> ModelFiles:
    """The export behind a user-chosen path.

    Args:
        location: an exported `.onnx` file, a SavedModel folder, or an export
            folder (with `manifest.json`).

    Returns:
        The manifest and the files present for each runtime.

    Raises:
        ModelError: the path is missing, is not a model, or has no valid manifest.
    """
    path = Path(location).expanduser()
    if not path.exists():
        raise ModelError(f"model not found: {path}")
    if path.is_dir():
        if (path / MANIFEST_FILE).is_file():
            return _from_export_folder(path, path)
        if _is_savedmodel(path):
            return _from_savedmodel_folder(path)
        raise ModelError(
            f"{path} is neither an export folder (with {MANIFEST_FILE}) nor a SavedModel folder; "
            "choose the folder the exporter wrote"
        )
    if path.suffix.lower() == ".onnx":
        return _from_onnx_file(path)
    if path.name == MANIFEST_FILE:
        return _from_export_folder(path.parent, path.parent)
    if path.name == "saved_model.pb":
        return _from_savedmodel_folder(path.parent)
    raise ModelError(
        f"{path.name} is not a model; open an exported .onnx file, a SavedModel folder or an export folder"
    )
