"""Builds the Functions deployment zip (used by scripts/package).

Layout, as the Functions host expects it at the root of wwwroot:
    host.json
    <defaultExecutablePath from host.json>   the custom handler, mode 0755
    <FunctionName>/function.json             one folder per function

The zip is reproducible (sorted entries, fixed timestamps) and records Unix file modes in each
entry's external attributes, so the executable bit survives the trip to the Linux worker
(run-from-package mounts the zip as is).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from pathlib import Path

# 1980-01-01, the earliest date a zip entry can carry, unless SOURCE_DATE_EPOCH says otherwise.
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
S_IFREG = 0o100000
S_IFDIR = 0o040000


def fail(message: str) -> None:
    print(f"package: {message}", file=sys.stderr)
    sys.exit(1)


def entry(name: str, mode: int, is_dir: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime(max(EPOCH, 315532800))[:6])
    info.create_system = 3  # Unix: external_attr carries st_mode in its high 16 bits
    info.external_attr = ((S_IFDIR if is_dir else S_IFREG) | mode) << 16
    if is_dir:
        info.external_attr |= 0x10  # MS-DOS directory flag
    info.compress_type = zipfile.ZIP_STORED if is_dir else zipfile.ZIP_DEFLATED
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, type=Path)
    parser.add_argument("--host-json", required=True, type=Path)
    parser.add_argument("--functions-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    if not args.binary.is_file():
        fail(f"no binary at {args.binary}; run scripts/build first or pass --binary PATH")
    if not args.host_json.is_file():
        fail(f"no host.json at {args.host_json}")
    try:
        host = json.loads(args.host_json.read_text())
        executable = host["customHandler"]["description"]["defaultExecutablePath"]
    except (ValueError, KeyError, TypeError) as err:
        fail(f"{args.host_json}: cannot read customHandler.description.defaultExecutablePath ({err})")
    if not isinstance(executable, str) or not executable or "/" in executable:
        fail(f"{args.host_json}: defaultExecutablePath must be a plain file name, not {executable!r}")

    functions = []
    for fj in sorted(args.functions_dir.glob("*/function.json")):
        try:
            bindings = json.loads(fj.read_text()).get("bindings")
        except ValueError as err:
            fail(f"{fj}: not valid JSON ({err})")
        if not isinstance(bindings, list) or not bindings:
            fail(f"{fj}: has no bindings")
        functions.append((fj.parent.name, fj))
    if not functions:
        fail(f"no */function.json under {args.functions_dir}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(entry("host.json", 0o644), args.host_json.read_bytes())
        zf.writestr(entry(executable, 0o755), args.binary.read_bytes())
        for name, fj in functions:
            zf.writestr(entry(f"{name}/", 0o755, is_dir=True), b"")
            zf.writestr(entry(f"{name}/function.json", 0o644), fj.read_bytes())
    tmp.replace(args.out)
    print(f"package: wrote {args.out} ({len(functions)} functions: {', '.join(n for n, _ in functions)})", file=sys.stderr)


if __name__ == "__main__":
    main()
