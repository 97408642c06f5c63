"""Entry point of the multi-task AI demo: the navigation (st.navigation), then the chosen page.

Every page keeps the URL it had as a file of the legacy pages/ folder (/Vision, /Model_cards, ...) and
its name in the sidebar; the home page is home.py. The list lives in pages/ui/navigation.py.
"""

from __future__ import annotations

import streamlit as st

from pages.ui.navigation import streamlit_pages

st.navigation(streamlit_pages()).run()
