#!/usr/bin/env python3
"""Import circles between the top-level modules of a crate's `src/`.

A module `a` depends on `b` when its code (not its comments, nor its
`#[cfg(test)] mod tests`) names `crate::b`. Higher modules may call lower
ones only: every group of modules that reach each other is printed, and the
exit status is 1 if there is any (CI runs it on `crates/songbind/src`).

    python3 scripts/module-cycles.py crates/songbind/src
"""
import os
import re
import sys


def dependencies(src):
    modules = {}
    for parent, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(parent, name)
            parts = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
            top = parts[0]
            if top in ("lib", "main"):
                continue
            text = open(path, encoding="utf-8").read()
            tests = text.find("#[cfg(test)]\nmod tests")
            if tests >= 0:
                text = text[:tests]
            code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
            names = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", code))
            modules.setdefault(top, set()).update(names - {top})
    return {m: {d for d in deps if d in modules} for m, deps in modules.items()}


def circles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    status = 0
    for src in sys.argv[1:]:
        graph = dependencies(src)
        for component in circles(graph):
            status = 1
            edges = ", ".join(
                f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component
            )
            print(f"{src}: import circle among {', '.join(component)} ({edges})")
    if status == 0:
        print("no import circles in " + " ".join(sys.argv[1:]))
    sys.exit(status)
