"""The RMaxTS tree of tactic states, with discounted UCB selection and virtual loss.

Semantics follow DeepSeek-Prover-V1.5 (arXiv 2408.08152, section 3): edges are tactic states,
a node keeps every proof prefix that reached it, selection at each node chooses between
expanding the node itself and descending into a child by a discounted UCB with a Hoeffding
bonus, and a running job counts as a discounted visit with zero reward (virtual loss) so that
32 concurrent jobs spread over the tree instead of piling onto one leaf.

Values are computed when selection needs them rather than cached on every update: an update then
costs O(depth), and selection O(depth x branching), which keeps bookkeeping well under a
millisecond per sample at 10^4 nodes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from search.segments import Step

_MIN_VISITS = 1e-2  # the floor DeepSeek uses in both the value and the bonus


@dataclass(frozen=True)
class Code:
    """A proof prefix that reaches a node, and where the next line would be indented."""

    prefix: str
    indent: int


class Node:
    __slots__ = (
        "_code_set",
        "children",
        "codes",
        "depth",
        "id",
        "parent",
        "reward",
        "running",
        "state",
        "sub_reward",
        "sub_running",
        "sub_visits",
        "visits",
    )

    def __init__(self, node_id: int, parent: Node | None, state: str) -> None:
        self.id = node_id
        self.parent = parent
        self.state = state
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.children: dict[str, Node] = {}
        self.codes: list[Code] = []
        self._code_set: set[str] = set()
        self.reward = 0.0  # discounted reward of expansions *of this node*
        self.visits = 0.0
        self.sub_reward = 0.0  # discounted reward of expansions anywhere in the subtree
        self.sub_visits = 0.0
        self.running = 0  # jobs expanding this node now
        self.sub_running = 0  # jobs expanding any node of the subtree now

    def add_code(self, code: Code) -> None:
        if code.prefix not in self._code_set:
            self._code_set.add(code.prefix)
            self.codes.append(code)

    def ancestry(self) -> Iterator[Node]:
        node: Node | None = self
        while node is not None:
            yield node
            node = node.parent


def discounted(reward: float, visits: float, running: int, gamma: float) -> tuple[float, float]:
    """(value, visitation) with `running` zero-reward virtual visits, discounted like real ones.

    Each running job ages the real statistics by one step (factor gamma) and adds one virtual
    visit, so the closed form is visits*g^r + (1 - g^r)/(1 - g).
    """
    if running:
        g = gamma**running
        visits = visits * g + (running if gamma == 1.0 else (1.0 - g) / (1.0 - gamma))
        reward = reward * g
    return reward / max(visits, _MIN_VISITS), visits


class Tree:
    """The search tree; all mutation goes through `select`, `insert`, `reward` and `finish`."""

    def __init__(self, gamma: float = 0.99, root_state: str = "") -> None:
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.gamma = gamma
        self.root = Node(0, None, root_state)
        self.root.add_code(Code("", 2))
        self.nodes: list[Node] = [self.root]
        self.max_depth = 0

    def __len__(self) -> int:
        return len(self.nodes)

    # ---------------------------------------------------------------- selection

    def choose(self, node: Node) -> Node | None:
        """UCB choice at `node`: None to expand the node itself, else the child to descend into.

        Ties go to expanding the node itself, then to the earliest child, as in DeepSeek's
        stable sort.
        """
        gamma = self.gamma
        own_value, own_visits = discounted(node.reward, node.visits, node.running, gamma)
        stats = [
            discounted(c.sub_reward, c.sub_visits, c.sub_running, gamma)
            for c in node.children.values()
        ]
        total = own_visits + sum(v for _, v in stats)
        log_term = 2.0 * math.log(max(total, 2.0))
        best = own_value + math.sqrt(log_term / max(own_visits, _MIN_VISITS))
        choice: Node | None = None
        for child, (value, visits) in zip(node.children.values(), stats, strict=True):
            score = value + math.sqrt(log_term / max(visits, _MIN_VISITS))
            if score > best:
                best, choice = score, child
        return choice

    def select(self) -> Node:
        """Walk from the root to the node to expand next and mark a job running there."""
        node = self.root
        while node.children:
            child = self.choose(node)
            if child is None:
                break
            node = child
        self.start(node)
        return node

    def start(self, node: Node) -> None:
        node.running += 1
        for n in node.ancestry():
            n.sub_running += 1

    def finish(self, node: Node) -> None:
        """The job on `node` ended (with or without a reward): drop its virtual loss."""
        node.running -= 1
        for n in node.ancestry():
            n.sub_running -= 1

    # ---------------------------------------------------------------- updates

    def reward(self, node: Node, value: float) -> None:
        """Discounted reward of one expansion of `node`, propagated to its ancestors."""
        gamma = self.gamma
        node.reward = node.reward * gamma + value
        node.visits = node.visits * gamma + 1.0
        for n in node.ancestry():
            n.sub_reward = n.sub_reward * gamma + value
            n.sub_visits = n.sub_visits * gamma + 1.0

    def insert(self, steps: Iterable[Step]) -> tuple[Node, int]:
        """Walk/extend the tree along `steps` from the root; returns (last node, nodes added).

        Every prefix is recorded on the node it reaches, so later expansions can resume from
        any of the proofs that got there.
        """
        node, added = self.root, 0
        for step in steps:
            if step.state == node.state:
                continue
            child = node.children.get(step.state)
            if child is None:
                child = Node(len(self.nodes), node, step.state)
                node.children[step.state] = child
                self.nodes.append(child)
                self.max_depth = max(self.max_depth, child.depth)
                added += 1
            child.add_code(Code(step.prefix, step.indent))
            node = child
        return node, added

    def delta(self, expanded: Node, first_new: int, reward: float | None,
              proved: bool = False) -> dict[str, Any]:
        """What one sample changed, small enough to stream after every sample: the nodes it
        added (id, parent, goals, depth), the node it expanded, and the new statistics of that
        node's ancestors (the only ones an update touches). A live view replays these to draw
        the tree incrementally."""
        gamma = self.gamma
        touched = []
        for n in expanded.ancestry():
            value, visits = discounted(n.sub_reward, n.sub_visits, n.sub_running, gamma)
            touched.append([n.id, round(visits, 4), round(value, 4)])
        return {
            "expanded": expanded.id,
            "reward": reward,
            "new_nodes": [
                {"id": n.id, "parent": n.parent.id if n.parent else None, "state": n.state,
                 "depth": n.depth}
                for n in self.nodes[first_new:]
            ],
            "stats": touched,
            "proof_path": [n.id for n in reversed(list(expanded.ancestry()))] if proved else None,
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole tree in the delta format, marked `reset` (it replaces whatever a viewer
        had): sent when a search starts or resumes, and for a viewer that joins late."""
        nodes = [{"id": n.id, "parent": n.parent.id if n.parent else None, "state": n.state,
                  "depth": n.depth} for n in self.nodes]
        stats = []
        for n in self.nodes:
            value, visits = discounted(n.sub_reward, n.sub_visits, n.sub_running, self.gamma)
            stats.append([n.id, round(visits, 4), round(value, 4)])
        return {"reset": True, "expanded": None, "reward": None, "new_nodes": nodes,
                "stats": stats, "proof_path": None}

    def pick_code(self, node: Node, rng: random.Random) -> Code:
        return node.codes[0] if len(node.codes) == 1 else rng.choice(node.codes)

    # ---------------------------------------------------------------- persistence

    def to_json(self) -> dict[str, Any]:
        """Plain data for the checkpoint (running jobs are not saved: they are lost on a kill)."""
        nodes = [
            {
                "parent": -1 if n.parent is None else n.parent.id,
                "state": n.state,
                "codes": [[c.prefix, c.indent] for c in n.codes],
                "stats": [n.reward, n.visits, n.sub_reward, n.sub_visits],
            }
            for n in self.nodes
        ]
        return {"gamma": self.gamma, "nodes": nodes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tree:
        entries = data["nodes"]
        tree = cls(gamma=float(data["gamma"]), root_state=entries[0]["state"])
        tree.root.codes.clear()
        tree.root._code_set.clear()
        for i, entry in enumerate(entries):
            if i == 0:
                node = tree.root
            else:
                parent = tree.nodes[int(entry["parent"])]
                node = Node(i, parent, entry["state"])
                parent.children[node.state] = node
                tree.nodes.append(node)
                tree.max_depth = max(tree.max_depth, node.depth)
            for prefix, indent in entry["codes"]:
                node.add_code(Code(prefix, int(indent)))
            node.reward, node.visits, node.sub_reward, node.sub_visits = map(
                float, entry["stats"]
            )
        return tree
