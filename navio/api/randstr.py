"""utilrand.String: the random suffixes of generated names (`web-7x4kq`, `kube-api-access-
b2x9z`).

Why not `secrets`: these are names, not credentials; kube draws them from math/rand, and a
system-random draw per character cost ~2 % of a pod create. The generator is seeded from the
OS once per process, so processes do not repeat each other's sequences.
"""

from __future__ import annotations

import random

__all__ = ["ALPHANUMS", "random_string"]

# No vowels (no words) and no confusable characters, as k8s.io/apimachinery/pkg/util/rand.
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_rand = random.Random()


def random_string(n: int) -> str:
    return "".join(_rand.choices(ALPHANUMS, k=n))
