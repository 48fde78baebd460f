#!/usr/bin/env python3
"""Import edges between ferry's top-level modules, checked against a layer order.

Every `crate::MODULE` path in a file (a `use` or a path written inline) is an edge from the
file's top-level module to MODULE. The layer order is the one of ARCHITECTURE.md (top first,
modules on one line share a layer); an edge from a lower layer to a higher one is "upward".
Prints the upward edges (with their files and lines) and any cycle among top-level modules;
exits 1 when there is a cycle or more upward edges than --max-upward allows.

    scripts/layers.py [--max-upward N] [--order code|architecture|FILE] [--verbose]
"""
import argparse
import collections
import pathlib
import re
import sys

# Top first; one line is one layer. `lib` is src/lib.rs and src/main.rs. ARCHITECTURE.md's
# order, with the modules it does not name put where they are used (`error` and `signals` with
# the commands that end in them, `words` with the leaves).
ARCHITECTURE = """
lib
cli
commands error signals
serve
report
settings
run
engine
plan
registry
access
docker_hub
input mapping filter layout shard
model
reference
exec memory queue scratch secret tls words
"""

# The same with the moves the code shows: `cli` under `settings` (which reads it), `serve`
# (its schedule grammar, metrics and endpoint) under `settings` (which parses `--cron`) and
# over `run` (whose events its metrics read), `tls` over `model` (a TLS failure is told per
# `Side`) and `filter` under it (a `Job` holds its `FilterSpec`), like the reference grammar,
# and `docker_hub` (which depends on nothing, and the grammar asks) at the bottom.
ORDER = """
lib
commands error signals
report
settings
cli
serve
run
engine
plan
registry
access
input mapping layout shard tls
model
filter reference
docker_hub exec memory queue scratch secret words
"""

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)


def module_of(path, src):
    rel = path.relative_to(src)
    first = rel.parts[0]
    if len(rel.parts) == 1:
        first = rel.stem
    return "lib" if first in ("lib", "main") else first


def edges(src):
    found = collections.defaultdict(list)
    for path in sorted(src.rglob("*.rs")):
        here = module_of(path, src)
        text = path.read_text()
        # Leave out unit tests: they may reach anywhere.
        cut = text.find("#[cfg(test)]\nmod tests")
        if cut >= 0:
            text = text[:cut]
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith("//"):
                continue
            for target in PATH.findall(line):
                if target != here:
                    found[(here, target)].append(f"{path}:{number}")
        for group in USE_GROUP.finditer(text):
            number = text.count("\n", 0, group.start()) + 1
            for name in re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group.group(1)):
                if name != here and name != "self":
                    found[(here, name)].append(f"{path}:{number}")
    return found


def cycles(graph):
    """Strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-upward", type=int)
    parser.add_argument(
        "--order",
        default="code",
        help="`code` (the default), `architecture`, or a file with the layer order, top first",
    )
    parser.add_argument("--src", default="src")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    order = {"code": ORDER, "architecture": ARCHITECTURE}.get(args.order)
    if order is None:
        order = pathlib.Path(args.order).read_text()
    layer = {}
    for depth, line in enumerate(l for l in order.splitlines() if l.strip()):
        for name in line.split():
            layer[name] = depth
    found = edges(pathlib.Path(args.src))
    graph = collections.defaultdict(set)
    unknown = set()
    upward = []
    for (here, target), places in sorted(found.items()):
        graph[here].add(target)
        for name in (here, target):
            if name not in layer:
                unknown.add(name)
        if here in layer and target in layer and layer[here] > layer[target]:
            upward.append((here, target, places))
    for name in sorted(unknown):
        print(f"not in the layer order: {name}")
    print(f"{len(found)} module edges, {len(upward)} upward:")
    for here, target, places in upward:
        print(f"  {here} -> {target}  ({len(places)}: {', '.join(places[:3])}{' …' if len(places) > 3 else ''})")
    found_cycles = cycles(graph)
    for component in found_cycles:
        print(f"cycle among: {' '.join(component)}")
    if not found_cycles:
        print("no cycle among top-level modules")
    if args.verbose:
        for (here, target), places in sorted(found.items()):
            print(f"  {here} -> {target} ({len(places)})")
    failed = found_cycles or unknown or (args.max_upward is not None and len(upward) > args.max_upward)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
