"""Text from files (manifest names, paths, PNG settings, history) shown strictly as plain text.

Qt guesses whether a label, tooltip or message box holds rich text
(`Qt::mightBeRichText`), so a crafted model name such as "<h1 style=...>" would
be rendered as HTML: big coloured text, links, pictures. Every string that can
come from a file goes through these helpers instead: labels and message boxes
are set to plain text, tooltips (which have no format setting) get the string
HTML-escaped inside a paragraph, and menu texts get their "&" doubled.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

MAX_SHOWN_CHARS = 160  # longer names are cut (with an ellipsis) where they are shown


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def plain_label(text: str = "", selectable: bool = False, wrap: bool = False) -> QLabel:
    """A QLabel that never interprets its text as HTML."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(wrap)
    return label


def tooltip(text: str) -> str:
    """A tooltip showing `text` literally (escaped; line breaks kept)."""
    if not text:
        return ""
    return "<p style='white-space:pre-wrap'>" + html.escape(text).replace("\n", "<br>") + "</p>"


def set_tooltip(widget: QWidget, text: str) -> None:
    widget.setToolTip(tooltip(text))


def menu_text(text: str) -> str:
    """Menu and button text shown literally ("&" would mark a shortcut)."""
    return shorten(text).replace("&", "&&")


def message_box(
    parent: QWidget | None,
    icon: QMessageBox.Icon,
    title: str,
    text: str,
    buttons: QMessageBox.StandardButton = QMessageBox.StandardButton.Ok,
) -> QMessageBox:
    """A non-modal message box whose text is plain text (not yet shown)."""
    box = QMessageBox(icon, shorten(title, 120), text, buttons, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return box
