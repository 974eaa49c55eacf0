"""The history strip: one thumbnail per finished or cancelled run, newest first; click to bring a run back.

The strip paints its cells itself (like `ImageGrid`) instead of holding one
QListWidgetItem per run: PySide6 6.11 keeps a reference to None for every
property set on a list item that Qt later deletes, and the strip is rebuilt
after every run, so item widgets would grow None's reference count without
bound over a long session.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QMenu, QMessageBox, QScrollArea, QSizePolicy, QToolTip, QWidget

from desktop.controller import Controller
from desktop.state import AppState
from desktop.widgets.qt_images import to_qimage
from desktop.widgets.text import message_box, tooltip

ICON_SIDE = 56
CELL_WIDTH = ICON_SIDE + 30
TEXT_HEIGHT = 30
CELL_HEIGHT = ICON_SIDE + TEXT_HEIGHT + 8
CANCELLED_COLOUR = QColor(230, 150, 60)
EMPTY_TEXT = "History: every finished or cancelled run appears here. Click one to bring back its images and settings."


class _Cells(QWidget):
    """The painted cells of the strip (inside its scroll area)."""

    def __init__(self, strip: HistoryStrip) -> None:
        super().__init__()
        self.strip = strip
        self.images: list[QImage | None] = []
        self.ids: list[str] = []
        self.labels: list[str] = []
        self.cancelled: list[bool] = []
        self.tips: list[str] = []
        self.hover = -1
        self.selected = ""
        self.setMouseTracking(True)

    def cell_rect(self, index: int) -> QRect:
        return QRect(4 + index * CELL_WIDTH, 2, CELL_WIDTH - 4, CELL_HEIGHT)

    def index_at(self, point: QPoint) -> int:
        for index in range(len(self.ids)):
            if self.cell_rect(index).contains(point):
                return index
        return -1

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        if not self.ids:
            painter.setPen(QColor(140, 140, 140))
            painter.drawText(
                self.strip.viewport().rect().adjusted(8, 0, -8, 0),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                EMPTY_TEXT,
            )
            return
        for index, image in enumerate(self.images):
            cell = self.cell_rect(index)
            if not cell.intersects(event.rect()):
                continue
            box = QRect(cell.left() + (cell.width() - ICON_SIDE) // 2, cell.top() + 2, ICON_SIDE, ICON_SIDE)
            if self.ids[index] == self.selected or index == self.hover:
                painter.fillRect(cell, QColor(70, 110, 170, 90 if self.ids[index] == self.selected else 45))
            if image is None:  # cancelled before the first level: nothing to show
                painter.fillRect(box, QColor(60, 62, 66))
                painter.setPen(QPen(QColor(130, 130, 130), 1))
                painter.drawLine(box.topLeft() + QPoint(8, 8), box.bottomRight() - QPoint(8, 8))
                painter.drawLine(box.topRight() + QPoint(-8, 8), box.bottomLeft() + QPoint(8, -8))
            else:
                zoom = min(ICON_SIDE / image.width(), ICON_SIDE / image.height())
                width, height = max(1, int(image.width() * zoom)), max(1, int(image.height() * zoom))
                target = QRect(
                    box.left() + (ICON_SIDE - width) // 2, box.top() + (ICON_SIDE - height) // 2, width, height
                )
                painter.drawImage(target, image)
            if self.cancelled[index]:
                painter.setPen(QPen(CANCELLED_COLOUR, 2))
                painter.drawRect(box.adjusted(-1, -1, 0, 0))
            text = QRect(cell.left(), box.bottom() + 3, cell.width(), TEXT_HEIGHT)
            painter.setPen(CANCELLED_COLOUR if self.cancelled[index] else self.palette().color(self.foregroundRole()))
            painter.drawText(text, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.labels[index])

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            index = self.index_at(event.pos())
            if index >= 0:
                QToolTip.showText(event.globalPos(), self.tips[index], self, self.cell_rect(index))
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        hover = self.index_at(event.position().toPoint())
        if hover != self.hover:
            self.hover = hover
            self.setCursor(Qt.CursorShape.PointingHandCursor if hover >= 0 else Qt.CursorShape.ArrowCursor)
            self.update()

    def leaveEvent(self, event: object) -> None:  # noqa: N802
        self.hover = -1
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = self.index_at(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and index >= 0:
            self.strip.activate(self.ids[index])
        elif event.button() == Qt.MouseButton.RightButton:
            self.strip.show_menu(self.ids[index] if index >= 0 else "", event.globalPosition().toPoint())


class HistoryStrip(QScrollArea):
    """Thumbnails of `AppState.history`, newest on the left; bound to the history's changes."""

    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.menu: QMenu | None = None
        self.question: QMessageBox | None = None
        self.cells = _Cells(self)
        self.setWidget(self.cells)
        self.setWidgetResizable(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(CELL_HEIGHT + 6 + self.horizontalScrollBar().sizeHint().height())
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(100)
        state.history_changed.connect(self.refresh)
        state.busy_changed.connect(lambda kind: self.setEnabled(not kind))
        self.refresh()

    def sizeHint(self) -> QSize:
        return QSize(600, self.height())

    def refresh(self) -> None:
        """Repaint from the history (thumbnails are converted once per refresh, at most MAX_ENTRIES small ones)."""
        history = self.state.history
        entries = list(reversed(history.entries))  # newest first
        cells = self.cells
        old = dict(zip(cells.ids, cells.images, strict=True))
        cells.ids = [entry.entry_id for entry in entries]
        cells.images = [
            old[entry.entry_id] if entry.entry_id in old else self._image(history.thumbnail(entry.entry_id))
            for entry in entries
        ]
        cells.labels = [entry.label() for entry in entries]
        cells.cancelled = [entry.cancelled for entry in entries]
        cells.tips = [
            tooltip(entry.describe() + "\n\nClick to bring it back; right-click for more.") for entry in entries
        ]
        if cells.selected not in cells.ids:
            cells.selected = ""
        self._fit_cells()
        cells.update()

    def _fit_cells(self) -> None:
        """The cells widget as wide as its cells, at least the visible width (a scroll bar only when needed)."""
        self.cells.resize(max(self.viewport().width(), 8 + len(self.cells.ids) * CELL_WIDTH), CELL_HEIGHT + 4)

    @staticmethod
    def _image(thumb: object) -> QImage | None:
        return None if thumb is None else to_qimage(thumb)  # type: ignore[arg-type]

    def entry_ids(self) -> list[str]:
        """The shown entries' ids, left to right (newest first)."""
        return list(self.cells.ids)

    def cell_rect(self, index: int) -> QRect:
        """Where entry `index` (0 = newest) is painted, in the strip's cell widget."""
        return self.cells.cell_rect(index)

    def activate(self, entry_id: str) -> None:
        self.cells.selected = entry_id
        self.cells.update()
        self.controller.restore_history(entry_id)

    def show_menu(self, entry_id: str, position: QPoint) -> None:
        menu = QMenu(self)
        if entry_id:
            menu.addAction("Bring back", lambda: self.activate(entry_id))
            menu.addAction("Remove from the history", lambda: self.controller.remove_history(entry_id))
            menu.addSeparator()
        clear = menu.addAction("Clear the history...", self.ask_clear)
        clear.setEnabled(bool(self.cells.ids))
        self.menu = menu
        menu.popup(position)

    def ask_clear(self) -> None:
        """Ask before forgetting every run (non-modal)."""
        box = message_box(
            self,
            QMessageBox.Icon.Question,
            "Clear the history",
            f"Forget all {len(self.cells.ids)} runs in the history, with their images? Saved PNGs are not affected.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        box.button(QMessageBox.StandardButton.Yes).clicked.connect(self.controller.clear_history)
        self.question = box
        box.open()

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._fit_cells()
