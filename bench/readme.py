"""Writing a benchmark's table into the README between its markers."""
from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def update_readme(text: str, marker: str) -> bool:
    """Replace what stands between `<!-- marker:start -->` and `<!-- marker:end -->` with
    `text`; False (and nothing written) when the README lacks the markers."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    content = README.read_text()
    if start not in content or end not in content:
        return False
    head, rest = content.split(start, 1)
    README.write_text(head + start + "\n" + text + end + rest.split(end, 1)[1])
    return True
