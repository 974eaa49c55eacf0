"""Shared test set-up: quiet TensorFlow, offscreen Qt, a CPU-only run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Session-wide exports (toy mixture, tiny digits) for the export tests; see tests/export_fixtures.py.
from export_fixtures import digits_export_dir, digits_workdir, exports_root, toy_export_dir  # noqa: E402, F401


def pytest_addoption(parser):
    parser.addoption(
        "--slow",
        action="store_true",
        help="also run the tests marked slow (CI=true does the same); the default run leaves them out",
    )


def pytest_collection_modifyitems(config, items):
    """The default run skips `slow` tests (it stays within ~15 minutes on 2 cores); --slow, CI=true
    or an explicit -m expression runs them."""
    import pytest

    if config.getoption("--slow") or os.environ.get("CI", "").lower() in ("1", "true", "yes") or config.option.markexpr:
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (the README's test command and CI do)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
