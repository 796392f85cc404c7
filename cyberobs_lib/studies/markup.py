"""Data values inside the Markdown the notebooks display: :mod:`cyberobs_lib.markup` (below
:mod:`cyberobs_lib.l10n`, which escapes the fields of catalog texts with it), under its former name."""

from cyberobs_lib.markup import escape_markdown, has_live_markup

__all__ = ["escape_markdown", "has_live_markup"]
