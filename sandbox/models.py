"""Items served by the sandbox's paginated API, so syncs have something real to read."""

from django.db import models


class SandboxItem(models.Model):
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="open")
    deleted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class FlakyHit(models.Model):
    """Calls per key to `/sandbox/api/flaky`, kept in the database so every process sees the same count."""

    key = models.CharField(max_length=200, unique=True)
    hits = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.hits}"
