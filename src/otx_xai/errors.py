"""otx_xai's error model: bad input is a ``UserError``; anything else that escapes is a bug of ours.

A ``UserError`` message is one line that names the problem and the fix (``the file x.xml has no .bin
beside it: export the IR again or copy its .bin``). The CLI prints it and exits 1; any other exception is
reported as an internal error (exit 3). ``UserError`` subclasses ``ValueError`` so callers that caught
``ValueError`` for bad input keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user (a flag value, a file, a model, a dataset): the message says what to do."""
