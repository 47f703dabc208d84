"""Tables for admissionregistration.k8s.io/v1 webhook configurations.

printMutatingWebhook and printValidatingWebhook (printers.go, v1.32): NAME, WEBHOOKS (the
number of webhooks in the configuration, an integer column) and AGE.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import Printer, age, age_column, column, get, name_column

__all__ = ["PRINTERS"]

WEBHOOK_COLUMNS = (
    name_column(),
    column("Webhooks", "integer", "Webhooks indicates the number of webhooks in this "
                                  "configuration"),
    age_column(),
)


def webhook_configuration_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [get(obj, "metadata", "name", default=""), len(obj.get("webhooks") or ()),
            age(obj, now)]


PRINTERS = {
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        Printer(WEBHOOK_COLUMNS, webhook_configuration_cells),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
        Printer(WEBHOOK_COLUMNS, webhook_configuration_cells),
}
