#!/usr/bin/env python3
"""Builds docs/store-conformance.md from the real test lists and a real run of both suites
(run by scripts/conformance-table)."""
import re, subprocess, sys, os, datetime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(ROOT)
env = dict(os.environ, RUST_BACKTRACE="0")

def listed(test):
    out = subprocess.run(["cargo", "test", "-q", "-p", "shared", "--test", test, "--", "--list"], capture_output=True, text=True, env=env).stdout
    return [line[:-len(": test")] for line in out.splitlines() if line.endswith(": test")]

def run(test):
    proc = subprocess.run(["cargo", "test", "-p", "shared", "--test", test, "--", "--test-threads", os.environ.get("THREADS", "8")], capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    results = dict(re.findall(r"^test (\S+) \.\.\. (ok|FAILED|ignored)$", out, re.M))
    panics = {}
    for name, message in re.findall(r"^thread '([^']+)' \(\d+\) panicked at [^\n]*\n(.*)$", out, re.M):
        panics[name] = message.strip()
    summary = re.findall(r"^test result: .*$", out, re.M)
    return results, panics, summary[-1] if summary else "no result"

def sections(path):
    """Behaviour function -> the section comment it is defined under."""
    current, found = None, {}
    lines = open(path).read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("// ----") and i + 1 < len(lines) and lines[i + 1].startswith("// ") and not lines[i + 1].startswith("// ----"):
            current = lines[i + 1][3:].strip()
        m = re.match(r"^async fn (\w+)\(subject: Subject\)", line)
        if m:
            found[m.group(1)] = current
    return found

def order_in_macro(path):
    text = open(path).read()
    body = text[text.index("macro_rules! every_behaviour"):]
    body = body[body.index("adapter!($adapter:") + len("adapter!($adapter:"):body.index(");")]
    return [name.strip() for name in body.split(",") if name.strip()]

def human(name):
    text = name.replace("_", " ")
    return text[0].upper() + text[1:]

def cell(path, results, panics, notes):
    state = results.get(path)
    if state == "ok":
        return f"✅ `{path}`"
    if state is None:
        return f"not run `{path}`"
    notes.append((path, panics.get(path, "")))
    return f"❌ `{path}` [{len(notes)}]"

conformance = listed("store_conformance")
faults = listed("cosmos_faults")
c_results, c_panics, c_summary = run("store_conformance")
f_results, f_panics, f_summary = run("cosmos_faults")

src = os.path.join(ROOT, "shared/tests/store_conformance.rs")
section_of = sections(src)
behaviours = order_in_macro(src)
listed_behaviours = sorted({name.split("::", 1)[1] for name in conformance})
assert sorted(behaviours) == listed_behaviours, "the macro list and --list disagree"
for backend in ("sqlite", "cosmos"):
    assert all(f"{backend}::{b}" in conformance for b in behaviours), backend

notes = []
out = []
w = out.append
w("# Storage conformance: behaviour × backend")
w("")
w("Every behaviour the domain relies on from a `Store` is one async function in")
w("`shared/tests/store_conformance.rs`, written once against `Arc<dyn Store>` and instantiated per")
w("backend by `every_behaviour!(sqlite)` / `every_behaviour!(cosmos)`, so each behaviour has one test")
w("per backend: `store_conformance::sqlite::<behaviour>` and `store_conformance::cosmos::<behaviour>`.")
w("The Cosmos DB store runs on the SDK's in-memory emulator (`azure_data_cosmos_driver` 1.0.0,")
w("feature `cosmos-emulator`, which the crate's tests get through its self dev-dependency), in local")
w("mode (its embedded queue in a SQLite file). Every test starts from empty storage.")
w("")
w("✅ = seen passing in the run this page was generated from; ❌ = seen failing (the note says why).")
w("")
w(f"Generated {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from")
w("`cargo test -p shared --test store_conformance -- --list` (the names) and a run of")
w("`cargo test -p shared --test store_conformance` and `--test cosmos_faults` (the results):")
w("")
w(f"- `store_conformance`: {len(conformance)} tests ({len(behaviours)} behaviours × 2 backends); {c_summary.replace('test result: ', '')}")
w(f"- `cosmos_faults`: {len(faults)} tests; {f_summary.replace('test result: ', '')}")
w("")
w("## Behaviour × backend")
w("")
w("| Area | Behaviour | SQLite | Cosmos DB (in-memory emulator) |")
w("|---|---|---|---|")
for b in behaviours:
    sq = cell(f"store_conformance::sqlite::{b}", {f"store_conformance::{k}": v for k, v in c_results.items()}, {f"store_conformance::{k}": v for k, v in c_panics.items()}, notes)
    co = cell(f"store_conformance::cosmos::{b}", {f"store_conformance::{k}": v for k, v in c_results.items()}, {f"store_conformance::{k}": v for k, v in c_panics.items()}, notes)
    w(f"| {section_of.get(b) or ''} | {human(b)} | {sq} | {co} |")
w("")
w("## Fault injection (Cosmos DB only)")
w("")
w("`shared/tests/cosmos_faults.rs`: rules of the SDK's fault injection (`azure_data_cosmos::fault_injection`)")
w("passed to `shared::store::cosmos::in_memory(options, rules)`; they sit below the SDK's retry policy,")
w("so the tests see the store's real retry and error handling. SQLite has no such layer.")
w("")
w("| Behaviour | Cosmos DB (in-memory emulator) |")
w("|---|---|")
for name in faults:
    path = f"cosmos_faults::{name}"
    w(f"| {human(name)} | {cell(path, {f'cosmos_faults::{k}': v for k, v in f_results.items()}, {f'cosmos_faults::{k}': v for k, v in f_panics.items()}, notes)} |")
w("")
if notes:
    w("## Failures seen")
    w("")
    for index, (path, message) in enumerate(notes, 1):
        w(f"{index}. `{path}`: {message.replace('|', '/')[:600]}")
    w("")
w(open(os.path.join(ROOT, "scripts/lib/conformance_by_design.md")).read().rstrip())
w("")
w("## Regenerating")
w("")
w("```sh")
w("scripts/conformance-table                                  # runs all three below, rewrites this page")
w("cargo test -p shared --test store_conformance -- --list   # the test names")
w("cargo test -p shared --test store_conformance              # both backends")
w("cargo test -p shared --test cosmos_faults                  # fault injection")
w("```")
w("")
w("The table is built from exactly those outputs (names from `--list`, results from the runs, rows in")
w("the order of the `every_behaviour!` list, areas from the section comments of the test file).")
open(os.path.join(ROOT, "docs/store-conformance.md"), "w").write("\n".join(out) + "\n")

# The README carries the same table, shorter: between its two markers.
def short(path, results):
    state = {"ok": "✅", None: "not run"}.get(results.get(path), "❌")
    return f"{state} `{path.split('::', 1)[1]}`"

c_all = {f"store_conformance::{k}": v for k, v in c_results.items()}
f_all = {f"cosmos_faults::{k}": v for k, v in f_results.items()}
rows = ["| behaviour | SQLite | Cosmos DB (in-memory emulator) |", "|---|---|---|"]
for b in behaviours:
    rows.append(f"| {human(b)} | {short(f'store_conformance::sqlite::{b}', c_all)} | {short(f'store_conformance::cosmos::{b}', c_all)} |")
for name in faults:
    rows.append(f"| {human(name)} (fault injection) | n/a | {short(f'cosmos_faults::{name}', f_all)} |")
readme_path = os.path.join(ROOT, "README.md")
readme = open(readme_path).read()
start, end = "<!-- conformance-table:start -->", "<!-- conformance-table:end -->"
if start in readme and end in readme:
    before, rest = readme.split(start, 1)
    _, after = rest.split(end, 1)
    readme = before + start + "\n" + "\n".join(rows) + "\n" + end + after
    open(readme_path, "w").write(readme)
print(c_summary); print(f_summary); print(len(notes), "failures")
