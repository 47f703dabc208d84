"""`navio cert revoke` and `navio kubeconfig admin`: take a credential away, hand out a new one.

`navio cert revoke SERIAL...` or `--user NAME` appends serials to DATA/pki/revoked-serials,
which the running API server re-reads on the next request (navio/apiserver/revocation.py): the
certificate gets 401 from then on, without a restart. `--user` revokes every certificate the
CA's issuance record (pki/issued.jsonl) and the files under DATA show for that user.

`navio kubeconfig admin [--user NAME] [--group G]...` issues a fresh client certificate from
the cluster CA and writes a kubeconfig (0600): how an operator recovers after revoking the
admin certificate. Both commands run on the server's machine: they need the CA's files.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from navio.apiserver.revocation import normalize_serial, read_serials
from navio.pki.certs import ISSUED_LOG, load_or_create_ca
from navio.pki.kubeconfig import write_kubeconfig

__all__ = ["add_parser"]


def _default_data_dir() -> Path:
    from navio.cli.server import _default_data_dir as default
    return default()


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cert", help="client certificates: revoke")
    s = p.add_subparsers(dest="cert_command", required=True, metavar="COMMAND")
    r = s.add_parser("revoke", help="revoke client certificates by serial or by user; the API "
                                    "server refuses them from the next request on")
    r.add_argument("serials", nargs="*", metavar="SERIAL", help="hex serial number(s)")
    r.add_argument("--user", help="revoke every certificate issued to this user (CN)")
    r.add_argument("--data-dir", type=Path, default=_default_data_dir())
    r.set_defaults(run=_revoke)

    k = sub.add_parser("kubeconfig", help="issue kubeconfigs signed by the cluster CA")
    ks = k.add_subparsers(dest="kubeconfig_command", required=True, metavar="COMMAND")
    a = ks.add_parser("admin", help="a new client certificate and kubeconfig (default: the "
                                    "cluster admin, replacing DATA/admin.kubeconfig)")
    a.add_argument("--user", default="kubernetes-admin", help="user name (certificate CN)")
    a.add_argument("--group", action="append", dest="groups",
                   help="group (certificate O), repeatable (default: system:masters)")
    a.add_argument("--output", "-o", type=Path,
                   help="where to write it (default: DATA/admin.kubeconfig for the admin, "
                        "else DATA/<user>.kubeconfig)")
    a.add_argument("--data-dir", type=Path, default=_default_data_dir())
    a.set_defaults(run=_issue_kubeconfig)


def _pem_certs(data_dir: Path) -> Iterator[x509.Certificate]:
    """Client certificates on disk: pki/*.crt and those embedded in DATA/*.kubeconfig."""
    for path in sorted((data_dir / "pki").glob("*.crt")):
        try:
            yield x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError:
            continue
    for path in sorted(data_dir.glob("*.kubeconfig")):
        try:
            doc = yaml.safe_load(path.read_text())
            for u in doc.get("users") or ():
                data = (u.get("user") or {}).get("client-certificate-data")
                if data:
                    yield x509.load_pem_x509_certificate(base64.b64decode(data))
        except (OSError, ValueError, AttributeError, yaml.YAMLError):
            continue


def _serials_of_user(data_dir: Path, user: str) -> set[str]:
    out = set()
    issued = data_dir / "pki" / ISSUED_LOG
    if issued.exists():
        for line in issued.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("cn") == user:
                out.add(normalize_serial(str(rec["serial"])))
    for cert in _pem_certs(data_dir):
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns and cns[0].value == user:
            out.add(normalize_serial(cert.serial_number))
    return out


def _revoke(args: argparse.Namespace) -> int:
    try:
        serials = {normalize_serial(s) for s in args.serials}
    except ValueError:
        serials = set()
    if any(not all(c in "0123456789ABCDEF" for c in s) for s in serials):
        print("navio cert revoke: serials are hexadecimal (as `openssl x509 -serial` prints)",
              file=sys.stderr)
        return 2
    if args.user:
        found = _serials_of_user(args.data_dir, args.user)
        if not found:
            print(f"navio cert revoke: no certificate issued to user {args.user!r} is known "
                  f"under {args.data_dir}", file=sys.stderr)
            return 1
        serials |= found
    if not serials:
        print("navio cert revoke: give SERIAL(s) or --user NAME", file=sys.stderr)
        return 2
    path = args.data_dir / "pki" / "revoked-serials"
    new = sorted(serials - read_serials(path))
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        label = f"  # user {args.user}" if args.user else ""
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, "".join(f"{s}{label}\n" for s in new).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    for s in sorted(serials):
        print(f"revoked {s}" if s in new else f"already revoked {s}")
    return 0


def _issue_kubeconfig(args: argparse.Namespace) -> int:
    data, user = args.data_dir, args.user
    groups = tuple(args.groups or ("system:masters",))
    pki = data / "pki"
    if not (pki / "ca.key").exists():
        print(f"navio kubeconfig: no cluster CA under {pki} (is --data-dir right?)",
              file=sys.stderr)
        return 1
    try:
        doc = yaml.safe_load((data / "admin.kubeconfig").read_text())
        server = doc["clusters"][0]["cluster"]["server"]
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        print(f"navio kubeconfig: cannot read the server URL from {data}/admin.kubeconfig",
              file=sys.stderr)
        return 1
    ca = load_or_create_ca(pki)
    admin = user == "kubernetes-admin" and groups == ("system:masters",)
    stem = "admin" if admin else "user-" + "".join(c if c.isalnum() else "-" for c in user)
    pair = ca.issue(pki, stem, cn=user, orgs=groups)
    out = args.output or data / ("admin.kubeconfig" if admin else f"{stem[5:]}.kubeconfig")
    write_kubeconfig(out, server=server, ca_cert=ca.pair.cert, client=pair, user=user)
    serial = x509.load_pem_x509_certificate(pair.cert_pem()).serial_number
    print(f"wrote {out} (user {user}, groups {','.join(groups)}, serial "
          f"{normalize_serial(serial)})")
    return 0
