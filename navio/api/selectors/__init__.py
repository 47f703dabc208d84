"""Label and field selectors, matched exactly as kube-apiserver matches them.

`labelSelector` and `fieldSelector` query parameters, `metav1.LabelSelector` objects in specs and
`Scale.status.selector` strings all go through this package, so list, watch and
deletecollection filter objects the way kubectl and controllers expect, and a bad selector gets
Kubernetes' own 400 message. Three modules, one per concept:

- `labels` — the label selector language and `metav1.LabelSelector` (labels/selector.go);
- `fields` — the field selector language (fields/selector.go);
- `kinds`  — per kind, which field labels are accepted and each object's field values.

Typical use on a list request::

    labels = parse_label_selector(query.get("labelSelector", ""))
    fields = check_field_selector(kind.group, kind.kind, query.get("fieldSelector", ""))
    keep = [o for o in objs if labels.matches(o["metadata"].get("labels"))
            and field_selector_matches(fields, selectable_fields(kind.group, kind.kind, o))]
"""

from __future__ import annotations

from navio.api.selectors.fields import (
    FieldRequirement, FieldSelector, escape_field_value, field_selector_matches,
    one_term_selector, parse_field_selector)
from navio.api.selectors.kinds import (
    check_field_selector, selectable_fields, supported_field_labels)
from navio.api.selectors.labels import (
    EVERYTHING, NOTHING, LabelSelector, Requirement, format_label_selector, format_labels,
    label_selector_from_spec, new_requirement, parse_label_selector, selector_from_set)

__all__ = [
    "LabelSelector", "Requirement", "EVERYTHING", "NOTHING", "parse_label_selector",
    "new_requirement", "label_selector_from_spec", "format_label_selector", "format_labels",
    "selector_from_set",
    "FieldSelector", "FieldRequirement", "parse_field_selector", "field_selector_matches",
    "escape_field_value", "one_term_selector",
    "selectable_fields", "check_field_selector", "supported_field_labels",
]
