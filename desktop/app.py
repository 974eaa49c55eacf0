"""`ncsn-desktop [MODEL]`: open the main window, optionally with a model.

A thin `main()` over `create_window` (docs/DESIGN.md: thin CLIs over a tested
library). Without MODEL the model open when the app last closed is reopened
(if it still exists).

Before Qt starts, `qt_platform_problem` checks that the X11 platform plugin's
system libraries load: without them Qt aborts the process with a message that
names the wrong package, so the app prints the Debian/Ubuntu packages to
install instead (docs/desktop.md, "System packages").
"""

from __future__ import annotations

import argparse
import ctypes
import os
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


# The system libraries of Qt's xcb (X11) platform plugin that a plain Debian/Ubuntu may lack
# (found with `ldd libqxcb.so` on Debian 12; libxcb-cursor0 is needed since Qt 6.5).
XCB_PACKAGES = (
    "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0 "
    "libxcb-shape0 libxcb-sync1 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0 libx11-xcb1 "
    "libegl1 libgl1 libfontconfig1 libdbus-1-3"
)
PLATFORM_HINT = (
    "Qt's X11 platform plugin cannot load: {reason}.\n"
    "On Debian/Ubuntu install the libraries it needs:\n"
    f"    sudo apt-get install {XCB_PACKAGES}\n"
    "(or run without a display: QT_QPA_PLATFORM=offscreen ncsn-desktop ...)"
)


def _wants_xcb(environment: dict[str, str]) -> bool:
    """Whether Qt will use its xcb (X11) platform plugin in this environment."""
    platform = environment.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    if not sys.platform.startswith("linux"):
        return False
    wayland = environment.get("WAYLAND_DISPLAY") and environment.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


def qt_platform_problem(plugin: str | os.PathLike[str] | None = None, environment: dict[str, str] | None = None) -> str:
    """Why Qt's xcb platform plugin would fail to load here, with the packages to install ("" when fine).

    Args:
        plugin: the plugin library (default: PySide6's platforms/libqxcb.so).
        environment: the environment to judge (default: os.environ).
    """
    environment = dict(os.environ if environment is None else environment)
    if plugin is None:
        if not _wants_xcb(environment):
            return ""
        from PySide6.QtCore import QLibraryInfo

        plugins = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
        plugin = os.path.join(plugins, "platforms", "libqxcb.so")
        if not os.path.exists(plugin):
            return ""  # not this kind of Qt build; let Qt speak for itself
    try:
        ctypes.CDLL(os.fspath(plugin), mode=getattr(os, "RTLD_LAZY", 1) | getattr(os, "RTLD_LOCAL", 0))
    except OSError as error:
        reason = str(error).removeprefix(os.fspath(plugin) + ": ")  # e.g. "libxcb-icccm.so.4: cannot open ..."
        return PLATFORM_HINT.format(reason=reason)
    if not environment.get("DISPLAY") and not environment.get("QT_QPA_PLATFORM"):
        return (
            "No display to open a window on (DISPLAY is not set).\n"
            "Start the app inside a desktop session, or run it without a display: "
            "QT_QPA_PLATFORM=offscreen ncsn-desktop ..."
        )
    return ""


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
    build_parser().parse_args(argv)  # --help / --version / bad options before anything starts
    if QApplication_instance() is None:
        problem = qt_platform_problem()
        if problem:
            print(f"ncsn-desktop: {problem}", file=sys.stderr)
            return 2
    app, window = create_window(argv)
    _install_excepthook(window)
    return app.exec()


def QApplication_instance() -> object:  # noqa: N802 (mirrors Qt's name)
    """The running QApplication, if any (without importing QtWidgets when none is needed)."""
    if "PySide6.QtWidgets" not in sys.modules:
        return None
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()


if __name__ == "__main__":
    sys.exit(main())
