"""Encrypted model fields that fail loudly instead of handing ciphertext on as a value, and dump ciphertext."""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.fernet import InvalidToken
from django.core.exceptions import ValidationError
from django.db import models
from encrypted_model_fields import fields as emf

from .exceptions import UndecryptableValue
from .logging import remember

# How `dumpdata` writes an encrypted value and `loaddata` recognises one: a backup stays encrypted,
# and a fixture's plaintext (hand-written) is still told apart from the ciphertext of a dump.
DUMP_PREFIX = "fernet:"
_SENSITIVE_KEY = re.compile(r"(?i)token|secret|password|verifier")


class EncryptedTextField(emf.EncryptedTextField):
    """django-encrypted-model-fields' field, minus its silent fallback, plus encrypted dumps.

    The library returns the raw ciphertext when decryption fails (a wrong or rotated-away
    key), so the ciphertext would be used as a token. Here reading raises instead. Every value
    read or written is remembered by connections.logging, so no log line of this process shows it.
    A blank value is stored blank (and read back blank), not as the ciphertext of "".
    """

    def _decrypt(self, value: str) -> str:
        try:
            return emf.decrypt_str(value)
        except InvalidToken:
            raise UndecryptableValue(
                f"{self.model._meta.label}.{self.name} cannot be decrypted with the configured "
                "FIELD_ENCRYPTION_KEY: restore the key it was written with (keys may be listed "
                "comma-separated, newest first)."
            ) from None

    def _sensitive(self, value: Any) -> list[str]:
        return [value] if isinstance(value, str) else []

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value  # a blank value is stored blank: there is nothing to hide in it
        plain = self._decrypt(value)
        remember(*self._sensitive(plain))
        return plain

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        remember(*self._sensitive(value))
        # The library's mixin would encrypt "" into a 100-character ciphertext that every reader
        # then has to decrypt; the column's own preparation runs first, so a JSON "" stays encrypted.
        prepared = super(emf.EncryptedMixin, self).get_db_prep_save(value, connection)
        if prepared is None or prepared == "":
            return prepared
        return emf.encrypt_str(str(prepared)).decode()

    def _dumped_text(self, value: str) -> str:
        """The plaintext inside a dumped value; a ValidationError (loaddata stops) under a wrong key."""
        try:
            return emf.decrypt_str(value[len(DUMP_PREFIX) :])
        except InvalidToken:
            raise ValidationError(
                f"{self.model._meta.label}.{self.name} was dumped under a key that is not in "
                "FIELD_ENCRYPTION_KEY: load the fixture with the key it was dumped with (keys may be "
                "listed comma-separated, newest first).",
                code="undecryptable",
            ) from None

    def to_python(self, value: Any) -> Any:
        # Forms and hand-written fixtures give plaintext; a dump gives DUMP_PREFIX + ciphertext.
        if isinstance(value, str) and value.startswith(DUMP_PREFIX):
            value = self._dumped_text(value)
            remember(*self._sensitive(value))
            return value
        return models.TextField.to_python(self, value)

    def _plain_text(self, value: Any) -> str:
        return str(value)

    def value_to_string(self, obj: models.Model) -> str:
        """What dumpdata writes: fresh ciphertext under the first key, never the plaintext."""
        value = self.value_from_object(obj)
        if value is None:  # serializers write None themselves; kept for other callers
            return value
        return DUMP_PREFIX + emf.encrypt_str(self._plain_text(value)).decode()


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
        if value is None:
            return None
        document = json.loads(self._decrypt(value))
        remember(*self._sensitive(document))
        return document

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(DUMP_PREFIX):
            document = json.loads(self._dumped_text(value))
            remember(*self._sensitive(document))
            return document
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

    def _plain_text(self, value: Any) -> str:
        return json.dumps(value, sort_keys=True)
