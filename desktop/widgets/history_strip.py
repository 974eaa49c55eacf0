"""The history strip: one thumbnail per finished or cancelled run, newest first; click to bring a run back."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QMenu, QMessageBox, QWidget

from desktop.controller import Controller
from desktop.state import AppState
from desktop.widgets.qt_images import scaled_nearest, to_qimage
from desktop.widgets.text import message_box, tooltip

ICON_SIDE = 56
ENTRY_ROLE = Qt.ItemDataRole.UserRole
CANCELLED_COLOUR = QColor(230, 150, 60)
EMPTY_TEXT = "History: every finished or cancelled run appears here. Click one to bring back its images and settings."


class HistoryStrip(QListWidget):
    """Thumbnails of `AppState.history`, newest on the left; bound to the history's changes."""

    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.menu: QMenu | None = None
        self.question: QMessageBox | None = None
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(ICON_SIDE, ICON_SIDE))
        self.setGridSize(QSize(ICON_SIDE + 28, ICON_SIDE + 34))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setFixedHeight(ICON_SIDE + 34 + self.horizontalScrollBar().sizeHint().height() + 6)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setToolTip("")
        self.itemClicked.connect(self._clicked)
        self.customContextMenuRequested.connect(self._menu)
        state.history_changed.connect(self.refresh)
        state.busy_changed.connect(lambda kind: self.setEnabled(not kind))
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the items from the history (at most MAX_ENTRIES small thumbnails)."""
        history = self.state.history
        selected = self.current_entry_id()
        self.clear()
        for entry in reversed(history.entries):
            item = QListWidgetItem(entry.label())
            item.setData(ENTRY_ROLE, entry.entry_id)
            item.setToolTip(tooltip(entry.describe() + "\n\nClick to bring it back; right-click for more."))
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            thumb = history.thumbnail(entry.entry_id)
            item.setIcon(QIcon(self._pixmap(thumb) if thumb is not None else self._empty_icon()))
            if entry.cancelled:
                item.setForeground(QBrush(CANCELLED_COLOUR))
            self.addItem(item)
            if entry.entry_id == selected:
                item.setSelected(True)

    @staticmethod
    def _pixmap(thumb: object) -> QPixmap:
        image = to_qimage(thumb)  # type: ignore[arg-type]
        return scaled_nearest(image, ICON_SIDE, ICON_SIDE)

    @staticmethod
    def _empty_icon() -> QPixmap:
        """The icon of a run cancelled before its first level: no images, a crossed grey square."""
        pixmap = QPixmap(ICON_SIDE, ICON_SIDE)
        pixmap.fill(QColor(60, 62, 66))
        painter = QPainter(pixmap)
        painter.setPen(QColor(130, 130, 130))
        painter.drawLine(8, 8, ICON_SIDE - 8, ICON_SIDE - 8)
        painter.drawLine(ICON_SIDE - 8, 8, 8, ICON_SIDE - 8)
        painter.end()
        return pixmap

    def current_entry_id(self) -> str:
        items = self.selectedItems()
        return str(items[0].data(ENTRY_ROLE)) if items else ""

    def entry_ids(self) -> list[str]:
        """The shown entries' ids, left to right (newest first)."""
        return [str(self.item(row).data(ENTRY_ROLE)) for row in range(self.count())]

    def _clicked(self, item: QListWidgetItem) -> None:
        self.controller.restore_history(str(item.data(ENTRY_ROLE)))

    def _menu(self, position: QPoint) -> None:
        item = self.itemAt(position)
        menu = QMenu(self)
        if item is not None:
            entry_id = str(item.data(ENTRY_ROLE))
            menu.addAction("Bring back", lambda: self.controller.restore_history(entry_id))
            menu.addAction("Remove from the history", lambda: self.controller.remove_history(entry_id))
            menu.addSeparator()
        clear = menu.addAction("Clear the history...", self.ask_clear)
        clear.setEnabled(self.count() > 0)
        self.menu = menu
        menu.popup(self.viewport().mapToGlobal(position))

    def ask_clear(self) -> None:
        """Ask before forgetting every run (non-modal)."""
        box = message_box(
            self,
            QMessageBox.Icon.Question,
            "Clear the history",
            f"Forget all {self.count()} runs in the history, with their images? Saved PNGs are not affected.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        box.button(QMessageBox.StandardButton.Yes).clicked.connect(self.controller.clear_history)
        self.question = box
        box.open()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(QColor(140, 140, 140))
            painter.drawText(
                self.viewport().rect().adjusted(8, 0, -8, 0),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                EMPTY_TEXT,
            )
