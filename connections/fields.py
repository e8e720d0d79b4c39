"""Encrypted model fields that fail loudly instead of handing ciphertext on as a value."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import models
from encrypted_model_fields import fields as emf

from .exceptions import UndecryptableValue


class EncryptedTextField(emf.EncryptedTextField):
    """django-encrypted-model-fields' field, minus its silent fallback.

    The library returns the raw ciphertext when decryption fails (a wrong or rotated-away
    key), so the ciphertext would be used as a token. Here reading raises instead.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        try:
            return emf.decrypt_str(value)
        except InvalidToken:
            raise UndecryptableValue(
                f"{self.model._meta.label}.{self.name} cannot be decrypted with the configured "
                "FIELD_ENCRYPTION_KEY: restore the key it was written with (keys may be listed "
                "comma-separated, newest first)."
            ) from None

    def to_python(self, value: Any) -> Any:
        # Values from forms and fixtures are plaintext; only from_db_value sees ciphertext.
        return models.TextField.to_python(self, value)


class EncryptedJSONField(EncryptedTextField):
    """A JSON document stored encrypted (e.g. the rest of a token response)."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        text = super().from_db_value(value, expression, connection)
        return None if text is None else json.loads(text)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True)

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))
