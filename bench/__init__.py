"""`make bench`: latency, throughput, comparisons and app cold start, measured in one run; load tests.

Every table these commands print is also written into README.md between its markers
(`<!-- NAME:start -->` … `<!-- NAME:end -->`), so the README never carries a figure typed by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def replace_readme_section(name: str, body: str, readme: Path = README) -> bool:
    """Put `body` between the README's `<!-- name:start -->` and `<!-- name:end -->` markers.

    Returns False (and changes nothing) when the README has no such markers.
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = readme.read_text(encoding="utf-8")
    match = re.search(re.escape(start) + r".*?" + re.escape(end), text, flags=re.DOTALL)
    if not match:
        return False
    new = text[: match.start()] + f"{start}\n{body.strip()}\n{end}" + text[match.end() :]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return True
