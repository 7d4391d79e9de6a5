"""Forks through views, on both adapters: isolation in both directions, deletes and replacements
on either side, forks of forks, delayed forks, and materialisation."""

from __future__ import annotations

import pytest

from libs.errors import ConflictError, InvalidInputError, NotFoundError
from libs.vectors import DenseVector, Eq, ForkableVectorStore, Segment, SpaceSpec
from tests.vectors.conftest import dense, docs, everything, ids, visible

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")


async def test_fork_isolation_both_ways(store: ForkableVectorStore, space: SpaceSpec) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs("a", "b", "c"), position=10)
    child = await store.fork_view(parent=parent, owner="col_child", at_position=11)
    assert child.segments == (Segment(owner="col_parent", upto=11), Segment(owner="col_child"))

    parent = await store.upsert(view=parent, points=docs("late"), position=12)
    child = await store.upsert(view=child, points=docs("mine"), position=13)
    child = await store.delete(view=child, document_ids=["b"], position=14)

    for query in range(5):
        found = ids(await store.search(view=child, query=dense(query), top_k=100))
        assert found == {"a", "c", "mine"}  # not born after the fork, not deleted by the fork
    assert ids(await everything(store, parent)) == {"a", "b", "c", "late"}  # no fork points
    assert await store.count(view=child) == 3
    assert await store.count(view=parent) == 4
    assert set(await visible(store, child)) == {"a", "c", "mine"}


async def test_parent_deletes_and_replacements_after_fork_stay_invisible_to_fork(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs("a", "b", version=1), position=5)
    child = await store.fork_view(parent=parent, owner="col_child", at_position=6)

    parent = await store.delete(view=parent, document_ids=["a"], position=7)
    parent = await store.upsert(view=parent, points=docs("b", version=2), position=8)

    assert ids(await everything(store, parent)) == {"b"}
    assert (await store.get(view=parent, document_ids=["b"]))[0].payload["version"] == 2
    seen = await visible(store, child)
    assert set(seen) == {"a", "b"}
    assert seen["b"].payload["version"] == 1  # the version as of the fork
    assert seen["b"].born == 5 and seen["b"].owner == "col_parent"
    assert not parent.masked and not child.masked  # own points die; nothing was masked


async def test_fork_deleting_or_replacing_inherited_points_masks_them(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs("a", "b", "c", version=1), position=5)
    child = await store.fork_view(parent=parent, owner="col_child", at_position=6)

    child = await store.delete(view=child, document_ids=["a", "never-there"], position=7)
    child = await store.upsert(view=child, points=docs("b", version=2), position=8)

    assert [m.position for m in child.masked] == [7, 8]
    seen = await visible(store, child)
    assert set(seen) == {"b", "c"}
    assert seen["b"].payload["version"] == 2 and seen["b"].owner == "col_child"
    assert (await store.get_view(space=space, owner="col_child")) == child
    parent_seen = await visible(store, parent)
    assert {d: p.payload["version"] for d, p in parent_seen.items()} == {"a": 1, "b": 1, "c": 1}


async def test_fork_of_a_fork(store: ForkableVectorStore, space: SpaceSpec) -> None:
    a = await store.create_view(space=space, owner="ns_a")
    a = await store.upsert(view=a, points=docs("a1", "a2"), position=1)
    b = await store.fork_view(parent=a, owner="ns_b", at_position=2)
    a = await store.upsert(view=a, points=docs("a3"), position=3)
    b = await store.upsert(view=b, points=docs("b1", "b2"), position=4)
    b = await store.delete(view=b, document_ids=["a1"], position=5)
    c = await store.fork_view(parent=b, owner="ns_c", at_position=6)
    b = await store.upsert(view=b, points=docs("b3"), position=7)
    b = await store.delete(view=b, document_ids=["b1", "a2"], position=8)
    a = await store.delete(view=a, document_ids=["a2"], position=9)
    c = await store.upsert(view=c, points=docs("c1"), position=10)

    assert [s.upto for s in c.segments] == [2, 6, None]
    assert ids(await everything(store, c)) == {"a2", "b1", "b2", "c1"}
    assert ids(await everything(store, b)) == {"b2", "b3"}
    assert ids(await everything(store, a)) == {"a1", "a3"}


async def test_user_filters_only_narrow_the_view(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs("a", "b", lang="en"), position=1)
    child = await store.fork_view(parent=parent, owner="col_child", at_position=1)
    child = await store.upsert(view=child, points=docs("c", lang="fr"), position=2)
    parent = await store.upsert(view=parent, points=docs("d", lang="fr"), position=3)

    fr = Eq(field="lang", value="fr")
    assert ids(await store.search(view=child, query=dense(1), filter=fr, top_k=10)) == {"c"}
    assert await store.count(view=child, filter=fr) == 1
    # Asking for another owner's points by their system fields still cannot leave the view.
    other = Eq(field="owner", value="col_parent")
    assert ids((await store.scroll(view=child, filter=other)).points) == {"a", "b"}


async def test_fork_registration_rules(store: ForkableVectorStore, space: SpaceSpec) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    child = await store.fork_view(parent=parent, owner="col_child", at_position=4)
    assert await store.fork_view(parent=parent, owner="col_child", at_position=4) == child
    with pytest.raises(ConflictError, match="col_child"):
        await store.fork_view(parent=parent, owner="col_child", at_position=5)
    with pytest.raises(InvalidInputError, match="only exists from position 4"):
        await store.fork_view(parent=child, owner="col_grandchild", at_position=3)
    with pytest.raises(ConflictError, match="col_parent"):
        await store.fork_view(parent=child, owner="col_parent", at_position=9)
    with pytest.raises(InvalidInputError, match="may not contain"):
        await store.create_view(space=space, owner="col~1")
    await store.drop_view(view=child)
    with pytest.raises(NotFoundError, match="col_child"):
        await store.upsert(view=child, points=docs("x"), position=9)
    with pytest.raises(NotFoundError, match="col_child"):
        await store.get_view(space=space, owner="col_child")


async def test_delayed_fork_keeps_points_masked_after_the_fork_position(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    """The fork is registered after the parent masked a point at a later position."""
    a = await store.create_view(space=space, owner="ns_a")
    a = await store.upsert(view=a, points=docs("x", "y"), position=1)
    b = await store.fork_view(parent=a, owner="ns_b", at_position=2)
    b = await store.delete(view=b, document_ids=["x"], position=3)
    b = await store.delete(view=b, document_ids=["y"], position=6)
    late = await store.fork_view(parent=b, owner="ns_c", at_position=5)  # recorded at 5
    assert ids(await everything(store, late)) == {"y"}


async def test_materialise_equals_the_view_it_replaces(
    store: ForkableVectorStore, space: SpaceSpec
) -> None:
    parent = await store.create_view(space=space, owner="col_parent")
    parent = await store.upsert(view=parent, points=docs(*"abcdefgh", tier="gold"), position=1)
    child = await store.fork_view(parent=parent, owner="col_child", at_position=2)
    child = await store.upsert(view=child, points=docs("b", "z", tier="silver"), position=3)
    child = await store.delete(view=child, document_ids=["c", "d"], position=4)
    parent = await store.upsert(view=parent, points=docs("late"), position=5)
    assert store.needs_materialise(child)  # the suite's store materialises from 3 masks

    before = await visible(store, child)
    queries = [dense(q) for q in range(4)]
    searches = [await store.search(view=child, query=q, top_k=5) for q in queries]
    old_snapshot = child

    child = await store.materialise(view=child, position=6)
    assert [s.upto for s in child.segments] == [None, None]
    assert {s.owner for s in child.segments} == {"col_child", "col_child~6"}
    assert child.masked == () and not store.needs_materialise(child)

    after = await visible(store, child)
    assert set(after) == set(before)
    for document_id, point in before.items():
        assert after[document_id].payload == point.payload
        old_vector, new_vector = point.vector, after[document_id].vector
        assert isinstance(old_vector, DenseVector) and isinstance(new_vector, DenseVector)
        assert new_vector.values == pytest.approx(old_vector.values, abs=1e-6)
    for query, expected in zip(queries, searches, strict=True):
        got = await store.search(view=child, query=query, top_k=5)
        assert [p.document_id for p in got] == [p.document_id for p in expected]
        assert [p.score for p in got] == pytest.approx([p.score for p in expected], abs=1e-5)
    # A reader still holding the old snapshot sees exactly what it saw: no copies appear twice.
    assert set(await visible(store, old_snapshot)) == set(before)
    # The materialised view keeps working as a view: deletes kill copies, forks share them.
    child = await store.delete(view=child, document_ids=["a"], position=7)
    assert child.masked == ()
    grandchild = await store.fork_view(parent=child, owner="col_grandchild", at_position=7)
    assert ids(await everything(store, grandchild)) == set(before) - {"a"}
    with pytest.raises(InvalidInputError, match="materialised at 6"):
        await store.fork_view(parent=child, owner="col_other", at_position=5)
