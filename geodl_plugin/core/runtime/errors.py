"""Errors a user can act on.

Every problem caused by input (a wrong band count, labels outside the raster, an unwritable path) is raised
as :class:`GeoDLError` with a message that names the problem and what to do. The dock and the Processing
algorithms show that message as it is; anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations


class GeoDLError(Exception):
    """A problem with the user's input or environment, explained in the message."""


class Cancelled(Exception):
    """The user cancelled the running step; nothing was written."""
