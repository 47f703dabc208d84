"""ControllerRevision hashing, naming and history truncation (issue 6)."""

from __future__ import annotations

from typing import Any

import pytest

from navio.api import errors
from navio.client import DAEMONSETS
from navio.controllers.controller_revisions import (RevisionCollision, _fnv32, claim_revisions,
                                                    ensure_revision,
                                                    equal_data, owned_revisions, revision_for,
                                                    revision_hash,
                                                    safe_encode, template_hash, template_patch,
                                                    truncate_history)


class _Client:
    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.existing = existing or {}
        self.deleted: list[str] = []
        self.created: list[dict[str, Any]] = []

    async def create(self, resource: Any, body: dict[str, Any], ns: Any = None) -> Any:
        name = body["metadata"]["name"]
        if name in self.existing:
            raise errors.AlreadyExists(f"{name} exists")
        self.created.append(body)
        return body

    async def get(self, resource: Any, name: str, ns: Any = None) -> Any:
        return self.existing[name]

    async def delete(self, resource: Any, name: str, ns: Any = None, **_: Any) -> Any:
        self.deleted.append(name)
        return {}


def rev(name: str, number: int, uid: str = "u1", data: Any = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns",
                         "ownerReferences": [{"controller": True, "uid": uid}]},
            "revision": number, "data": data or {"n": number}}


@pytest.mark.parametrize("data,fnv1,fnv1a", [
    (b"", 0x811C9DC5, 0x811C9DC5),
    (b"a", 0x050C5D7E, 0xE40C292C),
    (b"foobar", 0x31F0B262, 0xBF9CF968),
], ids=["the empty string hashes to the offset basis", "one byte matches the FNV vectors",
        "a word matches the FNV vectors"])
def test_fnv_variants_match_the_reference_vectors(data: bytes, fnv1: int, fnv1a: int) -> None:
    assert _fnv32(data, a=False) == fnv1
    assert _fnv32(data, a=True) == fnv1a


def test_safe_encode_maps_each_character_into_the_vowel_free_alphabet() -> None:
    # rand.SafeEncodeString("0123456789"), computed with the upstream alphabet.
    assert safe_encode("0123456789") == "456789bcdf"


def test_template_patch_replaces_the_whole_template() -> None:
    ds = {"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}, "replicas": 2}}
    assert template_patch(ds) == {"spec": {"template": {"metadata": {"labels": {"a": "b"}},
                                                        "spec": {}, "$patch": "replace"}}}
    assert "$patch" not in ds["spec"]["template"], "the input must not be mutated"


def test_hashes_are_stable_and_change_with_the_collision_count() -> None:
    tmpl = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}
    assert template_hash(tmpl) == template_hash(dict(tmpl))
    assert template_hash(tmpl, 1) != template_hash(tmpl, 0)
    data = template_patch({"spec": {"template": tmpl}})
    assert revision_hash(data) == revision_hash(data)
    assert revision_hash(data, 1) != revision_hash(data)
    assert set(revision_hash(data)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_owned_revisions_keeps_only_the_owners_sorted_by_number() -> None:
    revs = [rev("b", 3), rev("a", 1), rev("other", 2, uid="u2")]
    owner = {"metadata": {"uid": "u1"}}
    assert [r["metadata"]["name"] for r in owned_revisions(revs, owner)] == ["a", "b"]


async def test_ensure_revision_reuses_equal_data_and_reports_collisions() -> None:
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}
    same = rev("web-x", 1, data={"spec": {"k": 1}})
    client = _Client({"web-x": same})
    got = await ensure_revision(client, owner, {}, name="web-x", data={"spec": {"k": 1}},  # type: ignore[arg-type]
                                number=2, labels={})
    assert got is same
    with pytest.raises(RevisionCollision):
        await ensure_revision(client, owner, {}, name="web-x", data={"spec": {"k": 2}},  # type: ignore[arg-type]
                              number=2, labels={})
    made = await ensure_revision(client, owner, {"uid": "u1"}, name="web-y",  # type: ignore[arg-type]
                                 data={"spec": {"k": 3}}, number=4, labels={"l": "v"})
    assert made["revision"] == 4 and made["metadata"]["labels"] == {"l": "v"}
    assert equal_data(made, {"spec": {"k": 3}})


@pytest.mark.parametrize("in_use,limit,deleted", [
    (set(), 2, ["r1", "r2"]),
    ({"r1"}, 2, ["r2"]),
    (set(), 10, []),
    ({"r1", "r2", "r3", "r4"}, 0, []),
], ids=["the oldest unused go first", "revisions in use are never deleted",
        "nothing goes within the limit", "a zero limit keeps what is in use"])
async def test_truncate_history(in_use: set[str], limit: int, deleted: list[str]) -> None:
    client = _Client()
    revs = [rev(f"r{i}", i) for i in (4, 2, 3, 1)]
    await truncate_history(client, revs, in_use, limit)  # type: ignore[arg-type]
    assert client.deleted == deleted


class _ClaimClient:
    """Records adoption/release patches; `get` returns the owner for the re-check."""

    def __init__(self, owner: dict[str, Any]) -> None:
        self.owner, self.patches = owner, []  # type: ignore[var-annotated]

    async def get(self, resource: Any, name: str, ns: Any = None) -> dict[str, Any]:
        return self.owner

    async def patch(self, resource: Any, name: str, body: Any, ns: Any = None,
                    **_: Any) -> dict[str, Any]:
        self.patches.append((resource.plural, name, body["metadata"]["ownerReferences"]))
        return {"metadata": {"name": name, "labels": {"app": "d"}, "ownerReferences":
                             body["metadata"]["ownerReferences"]}, "revision": 1}


async def test_claim_revisions_adopts_matching_orphans_and_releases_strays() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "DaemonSet",
             "metadata": {"name": "d", "namespace": "ns", "uid": "u1"},
             "spec": {"selector": {"matchLabels": {"app": "d"}}}}
    mine = {"kind": "DaemonSet", "uid": "u1", "controller": True}

    def rev(name: str, labels: dict[str, str], refs: list[Any], number: int) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "uid": "r-" + name,
                             "labels": labels, "ownerReferences": refs}, "revision": number}
    revs = [rev("orphan", {"app": "d"}, [], 1), rev("kept", {"app": "d"}, [mine], 2),
            rev("stray", {"app": "x"}, [mine], 3),
            rev("theirs", {"app": "d"}, [{"uid": "u2", "controller": True}], 4)]
    client = _ClaimClient(owner)
    claimed = await claim_revisions(client, DAEMONSETS, owner, revs)  # type: ignore[arg-type]
    assert [r["metadata"]["name"] for r in claimed] == ["orphan", "kept"]
    assert [(name, refs[0].get("$patch") == "delete") for _, name, refs in client.patches] == [
        ("orphan", False), ("stray", True)]


class _BumpClient(_Client):
    async def patch(self, resource: Any, name: str, body: Any, ns: Any = None,
                    **_: Any) -> dict[str, Any]:
        return {**rev(name, body["revision"]), "data": {"n": 1}}


async def test_revision_for_returns_the_equal_revision_made_newest() -> None:
    revs = [rev("r1", 1), rev("r2", 2), rev("r3", 3)]
    client = _BumpClient()
    back, top = await revision_for(client, revs, {"n": 1})  # type: ignore[arg-type]
    assert (back["metadata"]["name"], back["revision"], top) == ("r1", 4, 3)  # a rollback
    newest, _ = await revision_for(client, revs, {"n": 3})  # type: ignore[arg-type]
    assert newest is revs[2], "the newest is left as it is"
    assert await revision_for(client, revs, {"n": 9}) == (None, 3)  # type: ignore[arg-type]
