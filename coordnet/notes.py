"""``note``: tell the user, in one line, what coordnet assumed about their input (a conversion it made).

A note is a ``UserWarning`` of the category ``InputNote``, so Python code can filter or catch it as usual
(``pytest.warns(InputNote)``); the ``coordnet`` command prints it as ``coordnet: note: …``.
"""

from __future__ import annotations

import warnings


class InputNote(UserWarning):
    """coordnet converted an input and says how (e.g. CMYK to RGB)."""


def note(text: str) -> None:
    """Warn with ``text`` under ``InputNote``."""
    warnings.warn(text, InputNote, stacklevel=3)
