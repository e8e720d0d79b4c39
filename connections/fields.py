"""Encrypted model fields that fail loudly instead of handing ciphertext on as a value."""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import models
from encrypted_model_fields import fields as emf

from .exceptions import UndecryptableValue
from .logging import remember

_SENSITIVE_KEY = re.compile(r"(?i)token|secret|password|verifier")


class EncryptedTextField(emf.EncryptedTextField):
    """django-encrypted-model-fields' field, minus its silent fallback.

    The library returns the raw ciphertext when decryption fails (a wrong or rotated-away
    key), so the ciphertext would be used as a token. Here reading raises instead. Every value
    read or written is remembered by connections.logging, so no log line of this process shows it.
    """

    def _sensitive(self, value: Any) -> list[str]:
        return [value] if isinstance(value, str) else []

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        remember(*self._sensitive(value))
        return super().get_db_prep_save(value, connection)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        try:
            plain = emf.decrypt_str(value)
        except InvalidToken:
            raise UndecryptableValue(
                f"{self.model._meta.label}.{self.name} cannot be decrypted with the configured "
                "FIELD_ENCRYPTION_KEY: restore the key it was written with (keys may be listed "
                "comma-separated, newest first)."
            ) from None
        remember(*self._sensitive(plain))
        return plain

    def to_python(self, value: Any) -> Any:
        # Values from forms and fixtures are plaintext; only from_db_value sees ciphertext.
        return models.TextField.to_python(self, value)


class EncryptedJSONField(EncryptedTextField):
    """A JSON document stored encrypted (e.g. the rest of a token response)."""

    def _sensitive(self, value: Any) -> list[str]:
        # An id_token or any other *token/*secret inside the provider's answer.
        found: list[str] = []
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str) and _SENSITIVE_KEY.search(str(key)):
                    found.append(item)
                else:
                    found += self._sensitive(item)
        elif isinstance(value, list):
            for item in value:
                found += self._sensitive(item)
        return found

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        text = super().from_db_value(value, expression, connection)  # _sensitive(text) is [] here
        if text is None:
            return None
        document = json.loads(text)
        remember(*self._sensitive(document))
        return document

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
