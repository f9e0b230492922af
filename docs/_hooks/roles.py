"""MkDocs hook: drop the Sphinx roles (``:class:``, ``:func:`` ...) left in rendered docstrings.

The package's docstrings are Sphinx style; mkdocstrings parses their ``:param:`` fields but
prints a role as ``:class:`` followed by the code. The code alone reads right.
"""
from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|attr|mod|exc|obj):(?=<code>)")


def on_page_content(html: str, **_: Any) -> str:
    return ROLE.sub("", html)
