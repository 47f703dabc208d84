"""Security contexts and seccomp/AppArmor profiles, validated as core validation's
ValidateSecurityContext, validateSeccompProfileField and ValidateAppArmorProfileField (v1.32).

Privileged containers are allowed (kube-apiserver `--allow-privileged=true`, as every common
installer sets it). Errors that upstream reports with the whole security context as the value
show its JSON (Go's `%#v` dump of the internal struct cannot be rebuilt).
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.field import (Cause, child, forbidden, invalid, not_supported,
                                        required, too_long)
from navio.api.validation.gorepr import go_json
from navio.api.validation.volumes import local_descending_path

__all__ = ["validate_security_context", "validate_seccomp_profile", "validate_apparmor_profile",
           "ALLOW_PRIVILEGED"]

ALLOW_PRIVILEGED = True


def validate_seccomp_profile(sp: Any, path: str) -> list[Cause]:
    if sp is None:
        return []
    errs: list[Cause] = []
    t = sp.get("type", "")
    valid = ["Localhost", "RuntimeDefault", "Unconfined"]
    if t == "":
        errs.append(required(child(path, "type"), "type is required when seccompProfile is set"))
    elif t not in valid:
        errs.append(not_supported(child(path, "type"), t, valid))
    if t == "Localhost":
        if sp.get("localhostProfile") is None:
            errs.append(required(child(path, "localhostProfile"),
                                 "must be set when seccomp type is Localhost"))
        else:
            errs += local_descending_path(sp["localhostProfile"], child(path, "localhostProfile"))
    elif sp.get("localhostProfile") is not None:
        errs.append(invalid(child(path, "localhostProfile"), go_json(sp),
                            "can only be set when seccomp type is Localhost"))
    return errs


def validate_apparmor_profile(p: Any, path: str) -> list[Cause]:
    if p is None:
        return []
    t, lp = p.get("type", ""), p.get("localhostProfile")
    if t == "Localhost":
        lpp = child(path, "localhostProfile")
        if lp is None:
            return [required(lpp, "must be set when AppArmor type is Localhost")]
        errs = []
        if lp.strip() != lp:
            errs.append(invalid(lpp, lp, "must not be padded with whitespace"))
        elif lp == "":
            errs.append(required(lpp, "must be set when AppArmor type is Localhost"))
        if len(lp.encode()) > 4095:
            errs.append(too_long(lpp, 4095))
        return errs
    if t in ("RuntimeDefault", "Unconfined"):
        if lp is not None:
            return [invalid(child(path, "localhostProfile"), lp,
                            "can only be set when AppArmor type is Localhost")]
        return []
    if t == "":
        return [required(child(path, "type"), "type is required when appArmorProfile is set")]
    return [not_supported(child(path, "type"), t, ["Localhost", "RuntimeDefault", "Unconfined"])]


def validate_security_context(sc: Any, path: str, host_users: bool) -> list[Cause]:
    if sc is None:
        return []
    errs: list[Cause] = []
    if sc.get("privileged") is True and not ALLOW_PRIVILEGED:
        errs.append(forbidden(child(path, "privileged"), "disallowed by cluster policy"))
    for f in ("runAsUser", "runAsGroup"):
        if sc.get(f) is not None:
            errs += [invalid(child(path, f), sc[f], m) for m in names.is_valid_user_id(sc[f])]
    pm = sc.get("procMount")
    if pm is not None:
        if pm not in ("Default", "Unmasked"):
            errs.append(not_supported(child(path, "procMount"), pm, ["Default", "Unmasked"]))
        if host_users and pm == "Unmasked":
            errs.append(invalid(child(path, "procMount"), pm,
                                "`hostUsers` must be false to use `Unmasked`"))
    errs += validate_seccomp_profile(sc.get("seccompProfile"), child(path, "seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            errs.append(invalid(path, go_json(sc), "cannot set `allowPrivilegeEscalation` to false "
                                                   "and `privileged` to true"))
        for cap in (sc.get("capabilities") or {}).get("add") or []:
            if cap == "CAP_SYS_ADMIN":
                errs.append(invalid(path, go_json(sc),
                                    "cannot set `allowPrivilegeEscalation` to false and "
                                    "`capabilities.Add` CAP_SYS_ADMIN"))
    errs += validate_apparmor_profile(sc.get("appArmorProfile"), child(path, "appArmorProfile"))
    return errs
