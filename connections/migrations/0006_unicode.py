"""Replace lone surrogates stored before they were refused or cleaned (U+FFFD), so pages and dumpdata work.

Only SQLite can hold them: it stores JSON as text with `\\ud800` escapes, while PostgreSQL's jsonb and
every text column refuse them. Rows are picked by a text search for such escapes, then checked in Python.
"""

from __future__ import annotations

import json
import operator
import re
from functools import reduce
from typing import Any

from django.db import migrations
from django.db.models import Q, TextField
from django.db.models.functions import Cast

_SURROGATE = re.compile("[\ud800-\udfff]")
# (model, JSON fields) that hold what worker code or tool input produced.
_COLUMNS = [("run", ["input", "result", "progress"]), ("record", ["properties"]), ("sync", ["state"])]


def _cleaned(value: Any) -> Any:
    # Through the JSON text: no recursion in Python, however deep the stored value (it was stored as JSON).
    text = json.dumps(value, ensure_ascii=False)
    return json.loads(_SURROGATE.sub("\ufffd", text)) if _SURROGATE.search(text) else value


def clean_stored_text(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    for model_name, fields in _COLUMNS:
        model = apps.get_model("connections", model_name)
        # The stored text of each column, searched for a \udXXX escape (a lone surrogate, or half a pair).
        texts = {f"_{name}_text": Cast(name, TextField()) for name in fields}
        escaped = reduce(operator.or_, (Q(**{f"{alias}__contains": "\\ud"}) for alias in texts))
        ids = list(model.objects.annotate(**texts).filter(escaped).values_list("pk", flat=True))
        for start in range(0, len(ids), 500):
            for row in model.objects.filter(pk__in=ids[start : start + 500]).only("pk", *fields):
                values = {name: _cleaned(getattr(row, name)) for name in fields}
                if any(values[name] is not getattr(row, name) for name in fields):
                    model.objects.filter(pk=row.pk).update(**values)


class Migration(migrations.Migration):
    dependencies = [("connections", "0005_pacers")]

    operations = [migrations.RunPython(clean_stored_text, migrations.RunPython.noop, elidable=True)]
