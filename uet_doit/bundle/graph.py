"""The step graph: explicit depends_on, workstream order and implied file edges; cycles shown."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from uet_doit.bundle.model import Bundle


@dataclass
class StepGraph:
    """Nodes are step ids and workstream ids; an edge a -> b means a waits for b.

    A workstream node waits for all its steps; a step waits for its step dependencies,
    for the workstreams its workstream (or itself) depends on, and for the steps that
    create the files it reads (decision: such an edge is added, as doit does).
    """

    edges: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    kinds: dict[str, str] = field(default_factory=dict)  # id -> "step" | "workstream"
    implied: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, node: str, deps: Iterable[str]) -> None:
        self.edges[node].extend(deps)

    def find_cycle(self) -> list[str] | None:
        """One cycle as a path `[a, b, ..., a]`, found iteratively (deep chains are fine)."""
        white, grey, black = 0, 1, 2
        color: dict[str, int] = defaultdict(int)
        for start, first in list(self.edges.items()):
            if color[start] != white or not first:  # a node waiting for nothing: no cycle
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = [start]
            color[start] = grey
            while stack:
                node, index = stack[-1]
                deps = self.edges.get(node, [])
                if index < len(deps):
                    stack[-1] = (node, index + 1)
                    dep = deps[index]
                    if color[dep] == grey:
                        return [*path[path.index(dep) :], dep]
                    if color[dep] == white:
                        color[dep] = grey
                        stack.append((dep, 0))
                        path.append(dep)
                else:
                    color[node] = black
                    stack.pop()
                    path.pop()
        return None

    def order(self) -> list[str]:
        """Dependencies first (Kahn); assumes no cycle."""
        indegree: dict[str, int] = dict.fromkeys(self.kinds, 0)
        users: dict[str, list[str]] = defaultdict(list)
        for node, deps in self.edges.items():
            for dep in set(deps):
                if dep in indegree and node in indegree:
                    indegree[node] += 1
                    users[dep].append(node)
        ready = [n for n, d in indegree.items() if d == 0]
        out: list[str] = []
        while ready:
            node = ready.pop()
            out.append(node)
            for user in users[node]:
                indegree[user] -= 1
                if indegree[user] == 0:
                    ready.append(user)
        return out


def build_graph(bundle: Bundle) -> StepGraph:
    graph = StepGraph()
    creators: dict[str, str] = {}
    for _ws, step in bundle.steps():
        for path in step.context.create_files:
            creators.setdefault(normalise_path(path), step.step_id)
    edges, kinds = graph.edges, graph.kinds  # 100k steps: attribute lookups add up
    for ws in bundle.workstreams:
        kinds[ws.ws_id] = "workstream"
        edges[ws.ws_id].extend([s.step_id for s in ws.steps])
        for step in ws.steps:
            kinds[step.step_id] = "step"
            deps = [*step.depends_on, *ws.depends_on]
            for path in step.context.files:
                creator = creators.get(normalise_path(path))
                if creator is not None and creator != step.step_id:
                    deps.append(creator)
                    if creator not in step.depends_on:
                        graph.implied[step.step_id].append(creator)
            edges[step.step_id].extend(deps)
    return graph


def normalise_path(path: str) -> str:
    """One spelling per file: `./docs//a.md` and `docs/a.md` are the same output."""
    plain = path and path[0] != "." and path[-1] != "/"
    if plain and "/." not in path and "//" not in path and "\\" not in path:
        return path  # nothing normpath would change: the common case, kept cheap
    return posixpath.normpath(path.replace("\\", "/")).removeprefix("./")


def dependents_of(graph: StepGraph, roots: Iterable[str]) -> set[str]:
    """Every node that (transitively) waits for one of `roots`, the roots included."""
    users: dict[str, list[str]] = defaultdict(list)
    for node, deps in graph.edges.items():
        for dep in deps:
            users[dep].append(node)
    seen = set(roots)
    todo = list(seen)
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in seen:
                seen.add(user)
                todo.append(user)
    return seen
