"""`navio image import|ls|rm`: the node's images, for air-gapped nodes (issue 11).

`import FILE...` adds OCI image layouts and `docker save` tarballs to the image store of the
agent whose `--root-dir` is given (default: the agent's default; for the local node of
`navio server`, `<data dir>/agent`), like `ctr images import`. `ls` lists images as
`crictl images` does; `rm` removes one by reference or ID, refusing one a container of that
agent still uses (as `crictl rmi`). Safe while the agent runs: the store's writes are atomic.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from navio.images.archive import ImportError_, import_archive
from navio.images.store import ImageStore
from navio.kubelet.config import default_root_dir

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("image", help="manage the node's container images (oci runtime)")
    p.add_argument("--root-dir", type=Path, default=None,
                   help="the agent's root dir (default: the agent's default; `navio server`'s "
                        "local node: <data dir>/agent)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    i = verbs.add_parser("import", help="import OCI-layout or docker-save tarballs")
    i.add_argument("files", nargs="+", type=Path)
    verbs.add_parser("ls", help="list images")
    r = verbs.add_parser("rm", help="remove images")
    r.add_argument("images", nargs="+")
    p.set_defaults(run=_run)


def _store(args: Any) -> ImageStore:
    return ImageStore((args.root_dir or default_root_dir()) / "images")


def _in_use(root: Path) -> set[str]:
    out = set()
    for rec in (root / "runtime" / "containers").glob("*/container.json"):
        try:
            out.add(json.loads(rec.read_text()).get("image", {}).get("id", ""))
        except (OSError, ValueError, AttributeError):
            continue
    return out


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"


def _run(args: Any) -> int:
    store = _store(args)
    if args.verb == "import":
        for file in args.files:
            try:
                images = import_archive(store, file)
            except (ImportError_, ValueError, OSError) as exc:
                print(f"error: {file}: {exc}", file=sys.stderr)
                return 1
            for image in images:
                name = image.repo_tags[0] if image.repo_tags else image.id
                print(f"imported {name} ({image.id})")
        return 0
    if args.verb == "ls":
        print(f"{'IMAGE':<50} {'TAG':<20} {'IMAGE ID':<15} SIZE")
        for image in store.images():
            short = image.id.removeprefix("sha256:")[:13]
            names = image.repo_tags or ("<none>:<none>",)
            for tag in names:
                repo, _, t = tag.rpartition(":")
                print(f"{repo:<50} {t:<20} {short:<15} {_human(image.size)}")
        return 0
    root = args.root_dir or default_root_dir()
    used = _in_use(root)
    code = 0
    for text in args.images:
        found = store.resolve(text)
        if found is None:
            print(f"error: no such image {text}", file=sys.stderr)
            code = 1
            continue
        if found.id in used:
            print(f"error: image {text} is in use by a container", file=sys.stderr)
            code = 1
            continue
        store.remove(found.id)
        print(f"Deleted: {text}")
    return code
