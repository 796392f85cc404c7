"""Data values inside the Markdown the notebooks display: escaped, so that a name is always read as text.

Family, establishment and plugin names, reasons quoting them and file names come from the dataset. Put in
a Markdown cell as they are, ``<script>…</script>`` in a name would run in the reader's browser and
``[x](http://…)`` would become a link. Every value a study writes into Markdown goes through
:func:`escape_markdown` (OWASP, *Cross Site Scripting Prevention Cheat Sheet*, rule 1: HTML-encode data
placed in HTML content; CommonMark spec §2.4: a backslash before ASCII punctuation makes it literal).
"""

from __future__ import annotations

import html
import re

#: Markdown punctuation that can start markup inside a line (emphasis, links and images, code, tables); ``<``
#: and ``&`` are HTML-escaped first. Parentheses are left: without ``[...]`` they make no link.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]|!~{}])")


def escape_markdown(value: object) -> str:
    """``value`` as literal text inside Markdown: HTML-escaped, Markdown punctuation backslash-escaped.

    >>> escape_markdown('<script>alert(1)</script>')
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    >>> escape_markdown("[clic](http://x) **gras**")
    '\\\\[clic\\\\](http://x) \\\\*\\\\*gras\\\\*\\\\*'
    >>> escape_markdown("hôpitaux des armées")
    'hôpitaux des armées'
    """
    text = html.escape(str(value), quote=False)  # quotes are harmless in text content
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def has_live_markup(rendered_html: str) -> bool:
    """Whether HTML rendered from Markdown holds an element or attribute that a data value could have
    injected: a ``<script>``, ``<iframe>``, ``<img>``, ``<a href>`` or ``on…=`` handler.

    >>> has_live_markup("<p>&lt;script&gt;</p>"), has_live_markup("<p><script>x</script></p>")
    (False, True)
    """
    return bool(
        re.search(r"<\s*(script|iframe|img|object|embed)\b|<a\s[^>]*href|\son\w+\s*=", rendered_html, re.I)
    )
