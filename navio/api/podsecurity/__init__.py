"""Pod Security Standards (privileged, baseline, restricted) as pure checks of pod specs."""

from navio.api.podsecurity.checks import CHECKS, Check, Violation
from navio.api.podsecurity.policy import (DEFAULT_POLICY, LABEL_PREFIX, LEVELS, MODES,
                                          LevelVersion, Policy, PolicyError, describe, evaluate,
                                          forbidden_message, parse_policy, pod_spec_of,
                                          warning_message)

__all__ = ["CHECKS", "Check", "Violation", "DEFAULT_POLICY", "LABEL_PREFIX", "LEVELS", "MODES",
           "LevelVersion", "Policy", "PolicyError", "describe", "evaluate", "forbidden_message",
           "parse_policy", "pod_spec_of", "warning_message"]
