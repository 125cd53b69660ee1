"""A griffe extension for the API reference (mkdocs.yml): nucfm's docstrings are written in reST
habits (``:func:`x```, ``>>>`` doctests); this shows them as Markdown code and ``pycon`` blocks."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:class|func|mod|data|attr|meth|exc|obj):`~?\.?([^`]+)`")


def markdown(text: str) -> str:
    """``:func:`~a.b``` becomes ```a.b```; each doctest (``>>>`` lines and their output) a fenced block.

    >>> print(markdown("See :func:`~nucfm.load_model`.\\n\\n>>> 1 + 1\\n2"))
    See `nucfm.load_model`.
    <BLANKLINE>
    ```pycon
    >>> 1 + 1
    2
    ```
    """
    out, in_doctest = [], False
    for line in ROLE.sub(r"`\1`", text).splitlines():
        if line.lstrip().startswith(">>>") and not in_doctest:
            out.append("```pycon")
            in_doctest = True
        elif in_doctest and not line.strip():
            out.append("```")
            in_doctest = False
        out.append(line)
    if in_doctest:
        out.append("```")
    return "\n".join(out)


class RestToMarkdown(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
