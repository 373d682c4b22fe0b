"""Tests of scripts/lib/import_cycles.py on small crates written to a temporary folder: a circle
between siblings is found (through `use` lines, inline paths and module aliases), a parent and
its children are one unit, and comments and strings are not code."""

from __future__ import annotations

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
import import_cycles  # noqa: E402


def crate(files: dict[str, str]) -> Path:
    root = Path(tempfile.mkdtemp()) / "demo" / "src"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def circles(src: Path):
    _, edges = import_cycles.graph_of(src)
    return import_cycles.strongly_connected(edges)


class ImportCycles(unittest.TestCase):
    def test_a_circle_through_use_lines_is_found(self):
        src = crate({
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "use crate::b::Thing;\n",
            "b.rs": "use crate::{c::{Other as O}, x};\npub struct Thing;\n",
            "c.rs": "use super::a;\nfn f() { a::go(); }\n",
        })
        self.assertEqual(circles(src), [[("a",), ("b",), ("c",)]])

    def test_inline_paths_and_module_aliases_count(self):
        src = crate({
            "lib.rs": "mod app;\nmod registry;\nmod functions;\n",
            "app.rs": "pub struct State;\nfn f() { crate::registry::all(); }\n",
            "registry.rs": "use crate::functions;\nfn all() { functions::orders::routes(); }\n",
            "functions/mod.rs": "pub mod orders;\n",
            "functions/orders.rs": "fn routes(s: crate::app::State) {}\n",
        })
        self.assertEqual(circles(src), [[("app",), ("functions", "orders"), ("registry",)]])

    def test_a_parent_and_its_children_are_one_unit(self):
        src = crate({
            "lib.rs": "pub mod store;\n",
            "store/mod.rs": "mod sqlite;\npub use sqlite::Db;\npub struct TenantId;\n",
            "store/sqlite.rs": "use super::TenantId;\npub struct Db;\n",
        })
        self.assertEqual(circles(src), [])

    def test_comments_and_strings_are_not_imports(self):
        src = crate({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::X;\n",
            "b.rs": "// use crate::a::Y;\n/* crate::a::Z */\nconst S: &str = \"crate::a::W\";\npub struct X;\n",
        })
        self.assertEqual(circles(src), [])

    def test_the_command_fails_on_a_circle_and_passes_without(self):
        with_circle = crate({"lib.rs": "mod a;\nmod b;\n", "a.rs": "use crate::b::X;\n", "b.rs": "use crate::a::Y;\n"})
        without = crate({"lib.rs": "mod a;\nmod b;\n", "a.rs": "use crate::b::X;\n", "b.rs": "pub struct X;\n"})
        self.assertEqual(import_cycles.main(["import_cycles.py", str(with_circle)]), 1)
        self.assertEqual(import_cycles.main(["import_cycles.py", str(without)]), 0)


if __name__ == "__main__":
    unittest.main()
