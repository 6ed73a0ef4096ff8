"""Crossroads' content and pure rules: the essay's points, the year-long journey, progress.

No Discord, no SQL, no I/O beyond loading the content YAML.
"""

from advice.content import (
    Content,
    ContentError,
    Frame,
    Point,
    UnknownPoint,
    default_content,
    load_content,
)

__all__ = [
    "Content",
    "ContentError",
    "Frame",
    "Point",
    "UnknownPoint",
    "default_content",
    "load_content",
]
