"""matchConditions of admission webhooks: CEL expressions deciding whether to call.

As k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions (v1.32): the expressions
run in order over `object`, `oldObject` (null where the operation has none) and `request`
(the AdmissionRequest the webhook would be sent); the first that is false skips the webhook
(a false wins over errors); otherwise, when any failed to evaluate or is not a bool, the
webhook is skipped under `failurePolicy: Ignore` and the request is refused under `Fail`
(403, `<resource> "<name>" is forbidden: expression '<expr>' resulted in error: <why>`, the
errors joined as apimachinery's aggregate prints them). `authorizer` is not offered: an
expression naming it fails to evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from navio.api.crd import cel

__all__ = ["MatchResult", "match"]


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: bool
    error: str | None = None            # set when the request must be refused
    failed_condition: str = ""          # the condition that was false


def match(conditions: tuple[dict[str, Any], ...] | list[dict[str, Any]],
          variables: dict[str, Any], failure_policy: str) -> MatchResult:
    errs: list[str] = []
    for cond in conditions:
        expression = str(cond.get("expression") or "")
        try:
            value = cel.evaluate(expression, variables)
        except Exception as exc:  # the binding raises several exception types
            errs.append(f"expression '{expression}' resulted in error: "
                        f"{cel.runtime_message(exc)}")
            continue
        if value is False:
            return MatchResult(False, failed_condition=str(cond.get("name") or ""))
        if value is not True:
            errs.append(f"expression '{expression}' resulted in error: no such overload")
    if errs:
        if failure_policy == "Ignore":
            return MatchResult(False)
        return MatchResult(False, errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return MatchResult(True)
