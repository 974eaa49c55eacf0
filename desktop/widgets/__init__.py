"""Qt widgets of the desktop app; each binds to `desktop.state.AppState`."""
