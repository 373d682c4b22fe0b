"""Which API operations reached a 2xx answer in schemathesis runs (scripts/schemathesis).

Usage: schemathesis_coverage.py OPENAPI_JSON HAR_FILE...

Reads the operations from the OpenAPI document and the exchanges from the HAR files the runs
recorded, and prints "operations reaching 2xx: N of M" and the ones that never did. Exits 0
(it reports; the checks decide pass or fail).
"""

import json
import re
import sys
from urllib.parse import urlparse


def operations(document):
    found = []
    for path, methods in document["paths"].items():
        regex = re.compile("^/api" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "/?$")
        for method in methods:
            found.append((method.upper(), path, regex))
    return found


def main():
    document = json.load(open(sys.argv[1]))
    ops = operations(document)
    reached = set()
    cases = 0
    for har in sys.argv[2:]:
        for entry in json.load(open(har))["log"]["entries"]:
            cases += 1
            status = entry["response"]["status"]
            method = entry["request"]["method"].upper()
            path = urlparse(entry["request"]["url"]).path
            if 200 <= status < 300:
                for op_method, op_path, regex in ops:
                    if op_method == method and regex.match(path):
                        reached.add((op_method, op_path))
    print(f"requests recorded: {cases}")
    print(f"operations reaching 2xx: {len(reached)} of {len(ops)}")
    for method, path, _ in ops:
        if (method, path) not in reached:
            print(f"  never 2xx: {method} {path}")


if __name__ == "__main__":
    main()
