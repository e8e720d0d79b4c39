"""The admin's static files: hashed and compressed once collected, plain names before that."""

from __future__ import annotations

from django.contrib.staticfiles.storage import StaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class SiteStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's manifest storage, minus its refusal to render a page before `collectstatic`.

    `workers serve` collects first, so pages link hashed names cached for a year. Without a manifest
    (the test server, a bare `gunicorn`, `runserver`), the manifest storage would answer every page
    with a 500 for want of a hashed name; here those pages get the plain name, which WhiteNoise's
    finders serve from the apps.
    """

    def url(self, name: str | None, force: bool = False) -> str:
        if not self.hashed_files and not force:
            return StaticFilesStorage.url(self, name)
        return super().url(name, force)
