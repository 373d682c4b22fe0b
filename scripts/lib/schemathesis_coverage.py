"""Which API operations reached a 2xx answer in schemathesis runs (scripts/schemathesis).

Usage: schemathesis_coverage.py OPENAPI_JSON HAR_FILE...

Reads the operations from the OpenAPI document and the exchanges from the HAR files the runs
recorded (only requests schemathesis sent: the script's own setup requests are not in them),
and prints "operations reaching 2xx: N of M". Every operation of the document must have been
answered 2xx at least once across the runs together: exits 1, naming the ones that never were
(and any HAR file that is missing or unreadable), else 0.
"""

import json
import re
import sys
from urllib.parse import urlparse


def operations(document):
    """(method, path, operationId, regex) of every operation; the path regex is under /api."""
    found = []
    for path, methods in document["paths"].items():
        regex = re.compile("^/api" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "/?$")
        for method, operation in methods.items():
            found.append((method.upper(), path, operation.get("operationId", "?"), regex))
    return found


# Operations no generated request can get a 2xx from, and why (they are tested elsewhere).
NO_2XX_EXPECTED = {
    "receivePaymentWebhook": "only a request signed by PayPal is accepted (functions/tests/payments_api.rs sends signed ones)",
}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    document = json.load(open(sys.argv[1]))
    ops = operations(document)
    reached = set()
    cases = 0
    problems = []
    for har in sys.argv[2:]:
        try:
            entries = json.load(open(har))["log"]["entries"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            problems.append(f"no HAR records in {har}: {error}")
            continue
        for entry in entries:
            cases += 1
            status = entry["response"]["status"]
            method = entry["request"]["method"].upper()
            path = urlparse(entry["request"]["url"]).path
            if 200 <= status < 300:
                for op_method, op_path, _, regex in ops:
                    if op_method == method and regex.match(path):
                        reached.add((op_method, op_path))
    print(f"requests recorded: {cases}")
    print(f"operations reaching 2xx: {len(reached)} of {len(ops)}")
    missing = [op for op in ops if (op[0], op[1]) not in reached and op[2] not in NO_2XX_EXPECTED]
    for method, path, operation_id, _ in ops:
        if operation_id in NO_2XX_EXPECTED:
            print(f"  not expected to reach 2xx: {method} {path} ({operation_id}): {NO_2XX_EXPECTED[operation_id]}")
    for method, path, operation_id, _ in missing:
        print(f"  never 2xx: {method} {path} ({operation_id})")
    if missing:
        names = ", ".join(f"{method} {path} ({operation_id})" for method, path, operation_id, _ in missing)
        problems.append(
            f"{len(missing)} of {len(ops)} operations never answered 2xx to schemathesis: {names}"
        )
    for problem in problems:
        print(f"schemathesis_coverage: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
