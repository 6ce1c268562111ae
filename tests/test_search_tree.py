"""The RMaxTS tree: shapes, UCB choices on hand-computed values, rewards, virtual loss."""

from __future__ import annotations

import math

import pytest

from search.segments import Step
from search.tree import Code, Tree, discounted


def s(prefix: str, state: str, indent: int = 2) -> Step:
    return Step(prefix, state, indent)


def shape(tree: Tree) -> list[tuple[int, int | None, str, list[str]]]:
    return [(n.id, n.parent.id if n.parent else None, n.state, [c.prefix for c in n.codes])
            for n in tree.nodes]


def test_steps_walk_and_extend_the_tree_with_goals_as_edges():
    tree = Tree(root_state="G0")
    _, added = tree.insert([s("a\n", "G1"), s("a\nb\n", "G2")])
    assert added == 2
    # Same goals by another proof: no new node, but the prefix is remembered on each node.
    last, added = tree.insert([s("a2\n", "G1"), s("a2\nb\n", "G2")])
    assert added == 0 and last.state == "G2"
    # A step that does not change the goal (here: back at the root goal) is no edge.
    _, added = tree.insert([s("skip\n", "G0"), s("skip\nc\n", "G3")])
    assert added == 1
    assert shape(tree) == [
        (0, None, "G0", [""]),
        (1, 0, "G1", ["a\n", "a2\n"]),
        (2, 1, "G2", ["a\nb\n", "a2\nb\n"]),
        (3, 0, "G3", ["skip\nc\n"]),
    ]
    assert tree.max_depth == 2 and len(tree) == 4


def test_same_goal_under_different_parents_gives_different_nodes():
    tree = Tree(root_state="G0")
    tree.insert([s("a\n", "G1"), s("a\nx\n", "GX")])
    tree.insert([s("b\n", "G2"), s("b\nx\n", "GX")])
    assert [n.state for n in tree.nodes] == ["G0", "G1", "GX", "G2", "GX"]


def test_ucb_choice_on_hand_computed_values():
    tree = Tree(root_state="G0")
    tree.insert([s("a\n", "A")])
    tree.insert([s("b\n", "B")])
    root, a, b = tree.nodes
    root.reward, root.visits = 1.0, 2.0
    a.sub_reward, a.sub_visits = 1.0, 1.0
    b.sub_reward, b.sub_visits = 0.0, 3.0
    # total 6: root 0.5 + sqrt(2 ln 6 / 2) = 1.84; A 1 + sqrt(2 ln 6) = 2.89; B 0 + 1.09
    assert tree.choose(root) is a
    a.sub_visits = 4.0
    # total 9: root 0.5 + sqrt(2 ln 9 / 2) = 1.98; A 0.25 + sqrt(2 ln 9 / 4) = 1.30; B 1.21
    assert tree.choose(root) is None
    assert tree.select() is root and root.running == 1


def test_unvisited_children_win_and_ties_prefer_expanding_the_node_itself():
    tree = Tree(root_state="G0")
    assert tree.choose(tree.root) is None  # a leaf is expanded itself
    tree.insert([s("a\n", "A")])
    tree.root.visits = 1.0
    assert tree.choose(tree.root) is tree.nodes[1]  # a fresh child has the largest bonus
    tree.root.visits = 0.0
    assert tree.choose(tree.root) is None  # equal scores: the node itself, as in DeepSeek


def test_reward_is_discounted_and_propagated_to_ancestors_only():
    tree = Tree(gamma=0.5, root_state="G0")
    tree.insert([s("a\n", "A"), s("a\nb\n", "B")])
    root, a, b = tree.nodes
    tree.reward(b, 1.0)
    tree.reward(b, 0.0)
    assert (b.reward, b.visits) == (0.5, 1.5)
    assert (b.sub_reward, b.sub_visits) == (0.5, 1.5)
    tree.reward(a, 1.0)
    assert (a.reward, a.visits) == (1.0, 1.0)
    assert (a.sub_reward, a.sub_visits) == (1.25, 1.75)
    assert (root.sub_reward, root.sub_visits) == (1.25, 1.75)
    assert (root.reward, root.visits) == (0.0, 0.0)  # the root itself was never expanded
    assert (b.sub_reward, b.sub_visits) == (0.5, 1.5)  # descendants are untouched


def test_virtual_loss_is_a_discounted_zero_reward_visit():
    value, visits = discounted(2.0, 4.0, 2, 0.5)
    assert visits == pytest.approx(4 * 0.25 + 0.75 / 0.5)
    assert value == pytest.approx(0.5 / 2.5)
    assert discounted(1.0, 1.0, 3, 1.0) == (0.25, 4.0)  # gamma 1: plain virtual visits


def test_virtual_loss_spreads_concurrent_selections():
    tree = Tree(root_state="G0")
    for name in "ABC":
        tree.insert([s(f"{name}\n", name)])
    tree.root.visits = 3.0
    picked = [tree.select().state for _ in range(3)]
    assert picked == ["A", "B", "C"]
    assert tree.root.sub_running == 3
    for node in tree.nodes[1:]:
        tree.finish(node)
    assert tree.root.sub_running == 0 and all(n.running == 0 for n in tree.nodes)
    # Without the running jobs counted, every selection would have gone to A.
    assert [tree.choose(tree.root) for _ in range(3)] == [tree.nodes[1]] * 3


def test_json_round_trip_keeps_shape_codes_and_statistics():
    tree = Tree(gamma=0.9, root_state="G0")
    tree.insert([s("a\n", "A", 2), s("a\n  b\n", "B", 4)])
    tree.insert([s("c\n", "C")])
    tree.reward(tree.nodes[2], 1.0)
    copy = Tree.from_json(tree.to_json())
    assert shape(copy) == shape(tree)
    assert copy.to_json() == tree.to_json()
    assert copy.nodes[2].codes == [Code("a\n  b\n", 4)]
    assert copy.max_depth == 2 and copy.gamma == 0.9
    assert math.isclose(copy.nodes[1].sub_reward, 1.0)


def test_delta_lists_new_nodes_and_the_touched_ancestry():
    tree = Tree(gamma=1.0, root_state="G0")
    tree.insert([s("a\n", "A")])
    first_new = len(tree)
    expanded = tree.nodes[1]
    tree.insert([s("a\n", "A"), s("a\nb\n", "B"), s("a\nb\nc\n", "C")])
    tree.reward(expanded, 1.0)
    d = tree.delta(expanded, first_new, 1.0)
    assert d["expanded"] == 1 and d["reward"] == 1.0 and d["proof_path"] is None
    assert d["new_nodes"] == [{"id": 2, "parent": 1, "state": "B", "depth": 2},
                              {"id": 3, "parent": 2, "state": "C", "depth": 3}]
    assert d["stats"] == [[1, 1.0, 1.0], [0, 1.0, 1.0]]
    assert tree.delta(tree.nodes[3], len(tree), None, proved=True)["proof_path"] == [0, 1, 2, 3]
    assert [n["id"] for n in tree.snapshot()["new_nodes"]] == [0, 1, 2, 3]
