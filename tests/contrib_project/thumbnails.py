"""A thumbnailer that returns the source image: the tests need no sorl-thumbnail or Pillow work."""

from __future__ import annotations

from typing import Any

from oscar.core.thumbnails import AbstractThumbnailer


class NoThumbnails(AbstractThumbnailer):
    def generate_thumbnail(self, source: Any, **opts: Any) -> Any:
        return source

    def delete_thumbnails(self, source: Any) -> None:
        return None
