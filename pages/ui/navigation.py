"""The app's pages, in sidebar order: file, name, icon and URL path (the legacy pages/ folder's URLs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.tasks import TASKS, TaskSpec

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PageEntry:
    path: str  # relative to the repository root (app.py's folder)
    title: str  # the name in the sidebar
    icon: str
    url_path: str  # "" for the home page

    @property
    def script(self) -> Path:
        return REPO_ROOT / self.path


def _task_page(task: TaskSpec) -> PageEntry:
    # The URL path is the legacy pages/ file name without its number ("pages/1_Vision.py" -> "Vision").
    return PageEntry(task.page, task.title, task.icon, Path(task.page).stem.split("_", 1)[1])


# Home, then one page per task in the task table's order, then the pages about all of them.
PAGES: tuple[PageEntry, ...] = (
    PageEntry("home.py", "Home", "🏠", ""),
    *(_task_page(task) for task in TASKS.values()),
    PageEntry("pages/5_Model_cards.py", "Model cards", "📇", "Model_cards"),
    PageEntry("pages/6_API.py", "API", "🔌", "API"),
)


def streamlit_pages() -> list:
    """st.Page objects for st.navigation (imported here so that this module stays importable without
    a running app)."""
    import streamlit as st

    return [
        st.Page(
            str(entry.script),
            title=entry.title,
            icon=entry.icon,
            url_path=entry.url_path or None,
            default=not entry.url_path,
        )
        for entry in PAGES
    ]
