"""Go `%#v` renderings of the few struct values Kubernetes puts in its error messages.

field.Error prints a bad value that is neither a scalar, a string nor a fmt.Stringer with
`%#v`, so an immutable label selector reads
`v1.LabelSelector{MatchLabels:map[string]string{"app":"x"},
                  MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
These helpers rebuild that text from the JSON form (nil and empty differ: a missing list is
`(nil)`, `[]` is `{}`). Maps print with sorted keys, as fmt does since Go 1.12.
"""

from __future__ import annotations

from typing import Any

from navio.api.errors import GoValue, go_quote

__all__ = ["go_map", "go_strings", "go_label_selector", "go_service_port", "go_json"]


def go_map(d: dict[str, Any] | None, typ: str = "map[string]string") -> GoValue:
    if d is None:
        return GoValue(f"{typ}(nil)")
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(d.items()))
    return GoValue(f"{typ}{{{items}}}")


def _strings(v: list[str] | None) -> str:
    if v is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(str(s)) for s in v) + "}"


def go_strings(v: list[str] | None) -> GoValue:
    return GoValue(_strings(v))


def go_label_selector(sel: dict[str, Any] | None) -> GoValue | None:
    """The dereferenced *metav1.LabelSelector (None stays None and prints `null`)."""
    if sel is None:
        return None
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = [f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key', '')))}, "
                 f"Operator:{go_quote(str(e.get('operator', '')))}, "
                 f"Values:{_strings(e.get('values'))}}}" for e in exprs]
        rendered = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return GoValue(f"v1.LabelSelector{{MatchLabels:{go_map(sel.get('matchLabels'))}, "
                   f"MatchExpressions:{rendered}}}")


def go_service_port(protocol: str, port: int) -> GoValue:
    """The `core.ServicePort{Protocol, Port}` key ValidateService reports duplicates with."""
    return GoValue(f'core.ServicePort{{Name:"", Protocol:{go_quote(protocol)}, '
                   f"AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString"
                   f'{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}')


def go_json(value: Any) -> GoValue:
    """Fallback for internal structs whose `%#v` dump cannot be rebuilt faithfully (pod
    templates, security contexts): their JSON, so the message still shows the value."""
    import json
    return GoValue(json.dumps(value, separators=(",", ":"), sort_keys=True))
