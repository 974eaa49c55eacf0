"""Every loader passes every file through the one safety gate before anything loads or runs it.

The loaders: the app (`desktop.backend.open_backend`), `export_format.load` /
`ExportedSampler`, the compatibility alias `export.runtime.load`, and the exporter's
verification (`export.verify.verify_export`). Each refuses the same unsafe export with
the same reason, and nothing the model asks for happens (a sentinel file stays absent).
Manifest paths and folders that are symlinks out of the export are refused by all of
them. The hostile models are the gate's own (tests/hostile_models.py): every family at a
hidden place, every hiding place of one family, and TF1 restore ops; the gate's rules
themselves are tested in tests/test_safety_gate.py.
"""

from __future__ import annotations

import json
import os
import shutil

import hostile_models as hm
import onnx
import pytest
from export_fixtures import gaussian_export_dir  # noqa: F401 (a session fixture)

import export_format
from export_format import ExportFormatError, UnsafeExportError


def _app(folder, runtime):
    from desktop.backend import open_backend

    return open_backend(folder, runtime)


def _export_runtime(folder, runtime):
    from export import runtime as compat

    return compat.load(folder, runtime)


def _verification(folder, runtime):
    from export.verify import verify_export

    return verify_export(folder, with_onnx=runtime == "onnxruntime")


LOADERS = {"app": _app, "export_format.load": export_format.load, "export.runtime.load": _export_runtime,
           "exporter verification": _verification}  # fmt: skip


def refused_by_every_loader(folder, runtime: str, words: str) -> str:
    """Every loader raises the same one-line refusal, with `words` in it; returns the message."""
    from export.verify import VerificationError

    messages = {}
    for name, loader in LOADERS.items():
        with pytest.raises((ExportFormatError, VerificationError)) as caught:
            loader(folder, runtime)
        message = str(caught.value)
        assert words in message and "\n" not in message, (name, message)
        if name != "exporter verification":
            assert isinstance(caught.value, UnsafeExportError), (name, type(caught.value))
        messages[name] = message
    reference = messages["export_format.load"]
    assert all(reference in message for message in messages.values()), messages  # identically (verification wraps it)
    return reference


# ----------------------------------------------------------------------------- real exports, tampered


@pytest.fixture
def export_copy(gaussian_export_dir, tmp_path):  # noqa: F811
    """A writable copy of a real image export (exact Gaussian score, both formats)."""
    return shutil.copytree(gaussian_export_dir, tmp_path / "gaussian")


def test_a_custom_operator_in_one_onnx_file_is_refused_by_every_loader(export_copy):
    onnx.save(hm.onnx_add_model(domain="ai.evil"), export_copy / "onnx" / "initial_images.onnx")
    refused_by_every_loader(export_copy, "onnxruntime", "ai.evil")


def test_an_onnx_file_symlinked_out_of_the_export_is_refused_by_every_loader(export_copy, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(export_copy / "onnx" / "sample_levels.onnx", outside)  # a working file, outside the folder
    os.symlink(outside, export_copy / "onnx" / "sample_levels.onnx")
    refused_by_every_loader(export_copy, "onnxruntime", "files.onnx.sample_levels = 'onnx/sample_levels.onnx' resolves through a symlink")


def test_a_savedmodel_folder_symlinked_out_of_the_export_is_refused_by_every_loader(export_copy, tmp_path):
    outside = tmp_path / "elsewhere_savedmodel"
    shutil.move(export_copy / "savedmodel", outside)
    os.symlink(outside, export_copy / "savedmodel", target_is_directory=True)
    refused_by_every_loader(export_copy, "tensorflow", "files.savedmodel = 'savedmodel' resolves through a symlink")


def test_manifest_paths_that_leave_the_folder_are_refused_by_every_loader(export_copy):
    manifest = json.loads((export_copy / "manifest.json").read_text())
    for path in ("/etc/passwd", "../gaussian/onnx/sample.onnx", "onnx/../../x.onnx"):
        manifest["files"]["onnx"]["sample"] = path
        (export_copy / "manifest.json").write_text(json.dumps(manifest))
        refused_by_every_loader(export_copy, "onnxruntime", "outside the export folder")


# ----------------------------------------------------------------------------- the gate's hostile models


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    watched = hm.Sentinel(tmp_path_factory.mktemp("loaders_sentinel") / "watched")
    yield watched
    watched.close()


def _as_image_export(folder):
    """The hostile export's manifest as an image model's (the app shows images only; the gate runs first)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(image_shape=[2, 1, 1], channels=1, value_range=[0.0, 1.0])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


HOSTILE_CASES = [*((family, "while_body") for family in hm.FAMILIES),
                 *(("WriteFile", placement) for placement in hm.PLACEMENTS if placement != "while_body")]  # fmt: skip


def _gate_message(folder) -> str:
    """The gate's own refusal of the folder's SavedModel (which names the op: tests/test_safety_gate.py)."""
    from export_format.safety import check_savedmodel

    with pytest.raises(UnsafeExportError) as caught:
        check_savedmodel(folder / "savedmodel")
    return str(caught.value)


@pytest.mark.parametrize("family, placement", HOSTILE_CASES)
def test_every_loader_refuses_each_family_of_hostile_savedmodel_identically(tmp_path, sentinel, family, placement):
    folder = _as_image_export(hm.savedmodel_case(tmp_path / "export", family, placement, sentinel))
    sentinel.arm()  # building may write (Dataset.save writes its spec while traced); loading may not
    refused_by_every_loader(folder, "tensorflow", _gate_message(folder))
    sentinel.assert_untouched()


@pytest.mark.parametrize("restore, placement", [("Save", "direct"), ("WriteFile", "nested_function")])
def test_every_loader_refuses_a_tf1_savedmodel_whose_restore_op_writes(tmp_path, sentinel, restore, placement):
    folder = _as_image_export(hm.tf1_savedmodel(tmp_path / "export", restore, placement, sentinel.target))
    sentinel.arm()
    message = refused_by_every_loader(folder, "tensorflow", _gate_message(folder))
    assert restore in message
    sentinel.assert_untouched()
    assert not sentinel.target.exists()
