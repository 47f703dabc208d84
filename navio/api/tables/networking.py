"""Tables for networking.k8s.io/v1 NetworkPolicies: printNetworkPolicy (printers.go, v1.32).

NAME, POD-SELECTOR (`metav1.FormatLabelSelector`: `<none>` for the empty selector) and AGE.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.selectors import format_label_selector
from navio.api.tables.cells import Printer, age, age_column, column, get, name_column

__all__ = ["PRINTERS"]

_POD_SELECTOR_DOC = (
    "podSelector selects the pods to which this NetworkPolicy object applies. The array of "
    "ingress rules is applied to any pods selected by this field. Multiple network policies "
    "can select the same set of pods. In this case, the ingress rules for each are combined "
    "additively. This field is NOT optional and follows standard label selector semantics. "
    "An empty podSelector matches all pods in this namespace.")

NETWORK_POLICY_COLUMNS = (name_column(), column("Pod-Selector", "string", _POD_SELECTOR_DOC),
                          age_column())


def network_policy_cells(np: Mapping[str, Any], now: datetime) -> list[Any]:
    return [get(np, "metadata", "name", default=""),
            format_label_selector(get(np, "spec", "podSelector") or {}), age(np, now)]


PRINTERS = {("networking.k8s.io", "NetworkPolicy"): Printer(NETWORK_POLICY_COLUMNS,
                                                            network_policy_cells)}
