#!/usr/bin/env python3
"""Finds import circles between the modules (files) of a Rust crate.

A module imports another when its code names an item of it: a `use crate::…`, `use super::…`
or `use self::…` line (groups included), or a `crate::…` / `super::…` path written inline.
A module and the modules inside it are one unit: a child naming its parent's items, or a
parent declaring, re-exporting or using its children's, is not counted (Rust makes a child part
of its parent's implementation). Every other import counts. A circle is a set of modules each
reachable from the others through imports (a strongly connected component of more than one
file): a reader cannot understand one without the others, and none can change alone.

Usage: import_cycles.py CRATE_SRC_DIR...   (for example shared/src functions/src)
Prints every circle with one import path that closes it; exits 1 if there is any.
"""

import os
import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_path(src: Path, file: Path):
    """The module path of a source file: lib.rs -> (), a.rs or a/mod.rs -> (a,), a/b.rs -> (a, b)."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments_and_strings(text: str) -> str:
    """Code only: comments, string and char literals replaced by spaces (lines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j == -1 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            end = n if end == -1 else end + 1 + len(hashes)
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 12]):
            m = re.match(r"'(\\[^']*|[^\\'])'", text[i:])
            i += len(m.group(0)) if m else 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use_tree(tree: str):
    """`a::{b, c::{d as e, f}}` -> ['a::b', 'a::c::d', 'a::c::f'] (aliases, globs, `self` dropped)."""
    tree = re.sub(r"\s+as\s+" + IDENT, "", tree)
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace == -1:
        return [re.sub(r"::(\*|self)$", "", tree)]
    prefix, inner = tree[:brace], tree[brace + 1:tree.rindex("}")]
    parts, start, level = [], 0, 0
    for k, c in enumerate(inner):
        if c == "{":
            level += 1
        elif c == "}":
            level -= 1
        elif c == "," and level == 0:
            parts.append(inner[start:k])
            start = k + 1
    parts.append(inner[start:])
    return [prefix + sub for part in parts if part for sub in expand_use_tree(part)]


def use_paths(code: str, starts):
    paths = []
    for m in re.finditer(r"\buse\s+((?:" + starts + r")\s*::[^;]*);", code):
        paths.extend(expand_use_tree(m.group(1)))
    return paths


def inline_paths(code: str, starts):
    without_uses = re.sub(r"\buse\s+[^;]*;", " ", code)
    found = re.finditer(r"(?<![A-Za-z0-9_:])((?:" + starts + r")(?:\s*::\s*" + IDENT + r")+)", without_uses)
    return [re.sub(r"\s+", "", m.group(1)) for m in found]


def resolve(path: str, here, modules):
    """The module (file) a path names, or None. `here` is the importing file's module path."""
    parts = [part for part in path.split("::") if part]
    current = list(here)
    if parts[0] == "crate":
        current, parts = [], parts[1:]
    else:
        # A path from the module itself: `super::`, `self::`, or a child's name.
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                current = current[:-1]
            parts = parts[1:]
    target = tuple(current)
    for part in parts:
        candidate = target + (part,)
        if candidate in modules:
            target = candidate
        else:
            break
    return target if target in modules else None


def nested(a, b):
    """Whether one module is the other or inside it (a module and its children are one unit)."""
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def graph_of(src: Path):
    # main.rs is the binary's crate root, a crate of its own (it uses the library by name).
    files = {module_path(src, f): f for f in sorted(src.rglob("*.rs")) if f.relative_to(src) != Path("main.rs")}
    edges = {m: {} for m in files}
    for module, file in files.items():
        code = strip_comments_and_strings(file.read_text(encoding="utf-8"))
        children = {m[-1] for m in files if len(m) == len(module) + 1 and m[:-1] == module}
        starts = "|".join(["crate", "super", "self", *sorted(children)])
        # `use crate::a::b;` naming a module lets the code write `b::item`.
        aliases = {}
        for path in use_paths(code, starts):
            target = resolve(path, module, files)
            if target is not None and not nested(module, target):
                edges[module].setdefault(target, path)
            if target is not None and target == resolve(path + "::_", module, files) and len(target) > 0 and path.split("::")[-1] == target[-1]:
                aliases[target[-1]] = target
        alias_starts = "|".join([starts, *sorted(aliases)])
        for path in inline_paths(code, alias_starts):
            head, _, rest = path.partition("::")
            if head in aliases and head not in children:
                path = "crate::" + "::".join(aliases[head]) + "::" + rest
            target = resolve(path, module, files)
            if target is not None and not nested(module, target):
                edges[module].setdefault(target, path)
    return files, edges


def strongly_connected(edges):
    """Tarjan's algorithm, iterative."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def closing_path(component, edges):
    """One circle through the component's first module, as a list of modules."""
    members = set(component)
    start = component[0]
    previous = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in edges[node]:
            if child == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if child in members and child not in previous:
                previous[child] = node
                queue.append(child)
    return component


def name(crate, module):
    return crate + ("::" + "::".join(module) if module else "")


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    circles = 0
    for src in map(Path, argv[1:]):
        crate = src.parent.name
        files, edges = graph_of(src)
        for component in strongly_connected(edges):
            circles += 1
            path = closing_path(component, edges)
            print(f"import circle in {crate} ({len(component)} files): " + ", ".join(str(files[m]) for m in component))
            for a, b in zip(path, path[1:]):
                print(f"    {name(crate, a)} -> {name(crate, b)}  ({edges[a][b]})")
    if circles:
        print(f"{circles} import circle(s); fix: move what both sides need into a module that imports neither")
        return 1
    print("no import circles in " + ", ".join(argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
