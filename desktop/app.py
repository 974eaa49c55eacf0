"""`ncsn-desktop [MODEL]`: open the main window, optionally with a model.

A thin `main()` over `create_window` (STYLE.md rule 8). Without MODEL the model
open when the app last closed is reopened (if it still exists).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from desktop import __version__
from desktop.backend.locate import RUNTIMES

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from desktop.widgets.main_window import MainWindow


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncsn-desktop",
        description="Sample and inpaint with an NCSN model exported by ncsn-tf (ONNX or SavedModel).",
    )
    parser.add_argument("model", nargs="?", help="exported .onnx file, SavedModel folder, or export folder")
    parser.add_argument("--runtime", choices=RUNTIMES, help="runtime to use (default: onnxruntime when possible)")
    parser.add_argument("--provider", help="onnxruntime execution provider, e.g. CUDAExecutionProvider")
    parser.add_argument(
        "--settings-file", help="keep settings in this INI file instead of the user's settings (portable use)"
    )
    parser.add_argument("--version", action="version", version=f"ncsn-desktop {__version__}")
    return parser


def create_window(argv: Sequence[str] | None = None) -> tuple[QApplication, MainWindow]:
    """Parse arguments, create the QApplication (if none yet) and the window, start opening the model.

    Args:
        argv: command-line arguments without the program name (default: sys.argv[1:]).

    Returns:
        (application, shown main window); the model loads in the background.
    """
    args = build_parser().parse_args(argv)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop.settings import APPLICATION, ORGANIZATION, last_model
    from desktop.widgets.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "ncsn-desktop"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    settings = QSettings(args.settings_file, QSettings.Format.IniFormat) if args.settings_file else None
    window = MainWindow(settings=settings)
    app.aboutToQuit.connect(window.controller.shutdown)  # never leave a worker thread running at exit
    window.show()
    model = args.model or last_model(window.settings)
    if args.model or (model and Path(model).exists()):
        window.controller.open_model(model, runtime=args.runtime, provider=args.provider)
    elif args.runtime or args.provider:
        window.state.set_runtime(args.runtime, args.provider)
    return app, window


def _install_excepthook(window: MainWindow) -> None:
    """Unexpected exceptions in Qt slots become a dialog instead of a silent failure or exit."""

    def hook(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
        traceback.print_exception(kind, value, trace)
        try:
            window.show_error("Unexpected error", f"{kind.__name__}: {value}\n\nThe app keeps running.")
        except Exception:  # the window may be gone during shutdown
            pass

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app until its window closes.

    Returns:
        The process exit status.
    """
    app, window = create_window(argv)
    _install_excepthook(window)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
