"""Success policy of Indexed Jobs: succeed early once chosen indexes (or enough of them)
succeeded (pkg/controller/job/success_policy.go, v1.32).

Guarantee: `match_success_policy` returns ("Matched rules at index N", True) for the first
rule whose `succeededIndexes` all succeeded, or at least `succeededCount` of them did, or
(without indexes) whose `succeededCount` indexes succeeded; rules whose indexes do not parse
are skipped.
"""

from __future__ import annotations

from typing import Any

from navio.controllers.job.indexes import parse_indexes

__all__ = ["match_success_policy"]


def match_success_policy(policy: dict[str, Any] | None, completions: int,
                         succeeded: set[int]) -> tuple[str, bool]:
    if policy is None or not succeeded:
        return "", False
    for index, rule in enumerate(policy.get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_indexes(rule["succeededIndexes"], completions)
            if not required:
                continue
            contains = len(required & succeeded)
            if contains == len(required) or (count is not None and contains >= int(count)):
                return f"Matched rules at index {index}", True
        elif count is not None and len(succeeded) >= int(count):
            return f"Matched rules at index {index}", True
    return "", False
