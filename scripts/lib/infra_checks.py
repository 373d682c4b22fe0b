"""The checks behind scripts/test-infra (run with the .tools/venv Python, which has pycep).

Each check prints `ok    NAME` or `FAIL  NAME: why`; the last line is `infra: N passed, M failed`
and the exit status is 1 if anything failed. Nothing here needs Azure, the Bicep CLI or cargo.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import traceback
import xml.etree.ElementTree as ET
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterable

# ---- Allow-lists for the app-settings check ------------------------------------------------

# Keys of local.settings.example.json that configure only the laptop runtime (SQLite store, folder
# archive, the embedded host that plays the Functions host, its timers, queue and outbox relay). In
# Azure, STORE=cosmos and ARCHIVE=blob make the first two meaningless, and the real host runs the
# timers, Service Bus and the outbox relay's change feed trigger; setting LOCAL_TIMERS or
# LOCAL_RELAY there would say the handler should do the host's work a second time.
# ARCHIVE_BLOB_SAS and COSMOS_KEY authenticate the Blob archive and the Cosmos DB store against
# emulators (Azurite, the Cosmos DB emulator); in Azure the managed identity does
# (the Cosmos DB account has local auth off), and a SAS or key there would be a secret in app
# settings. So they must NOT appear in the Bicep.
LOCAL_ONLY = {
    "DATA_DIR",
    "ARCHIVE_DIR",
    "ARCHIVE_BLOB_SAS",
    "COSMOS_KEY",
    "LOCAL_PORT",
    "LOCAL_TIMERS",
    "LOCAL_RELAY",
    "LOCAL_PAYPAL_PORT",
    "LOCAL_ERP_PORT",
    "LOCAL_CARRIER_PORT",
    "LOCAL_CARRIER_STEP_SECONDS",
    "LOCAL_QUEUE_MAX_DELIVERY_COUNT",
    "LOCAL_QUEUE_LOCK_SECONDS",
    "LOCAL_QUEUE_RETRY_DELAY_MS",
}

# Settings the Functions host and App Service read (not the handler), allowed in the Bicep only.
PLATFORM_KEYS = {
    "FUNCTIONS_EXTENSION_VERSION",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}
PLATFORM_PREFIXES = ("WEBSITE_",)

# Keys of local.settings.example.json that shared/src/config.rs does not read (as far as the
# pattern below sees: it finds upper-case names only): the host's own settings and connections,
# and RUST_LOG (tracing's EnvFilter reads it). The outbox relay reads the Service Bus namespace
# from the host's connection setting, ServiceBusConnection__fullyQualifiedNamespace. Every other
# key must be one the app reads, and every setting the app reads must be in the file, except
# FUNCTIONS_CUSTOMHANDLER_PORT, which the host sets.
NOT_READ_BY_CONFIG = {
    "FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "ServiceBusConnection__fullyQualifiedNamespace", "RUST_LOG",
    # The SignalR bindings' connection (the host's); `handler local` serves its own service.
    "AzureSignalRConnectionString__serviceUri",
}
SET_BY_HOST = {"FUNCTIONS_CUSTOMHANDLER_PORT"}

# Connections: a local key `Conn` (connection string) or `Conn__fullyQualifiedNamespace` stands
# for a connection the host builds from `Conn__*` settings; in Azure it is identity-based. A
# connection a function.json binding names (`connection`, `leaseConnection`) is the host's too,
# local key or not: the Cosmos DB trigger's has none, because locally `handler local` runs the
# relay over its own feed (LOCAL_RELAY) and no host reads it.
IDENTITY_PROPERTIES = {
    "accountName", "blobServiceUri", "queueServiceUri", "tableServiceUri",
    "fullyQualifiedNamespace", "accountEndpoint", "credential", "clientId", "serviceUri",
}

# Literal values Azure must have, whatever the local file says.
REQUIRED_VALUES = {
    "FUNCTIONS_WORKER_RUNTIME": "custom",
    "FUNCTIONS_EXTENSION_VERSION": "~4",
    "STORE": "cosmos",
    "ARCHIVE": "blob",
    "LOG_FORMAT": "json",
    "AzureWebJobsStorage__credential": "managedidentity",
    "ServiceBusConnection__credential": "managedidentity",
    "CosmosConnection__credential": "managedidentity",
    "AzureSignalRConnectionString__credential": "managedidentity",
    "WEBSITE_RUN_FROM_PACKAGE": "1",
}


# The Cosmos DB data model of the store (shared/src/store/cosmos/mod.rs, its module doc):
# container -> partition key, default TTL (-1: on, items carry their own `ttl`; None: off) and
# indexing policy ("store": what data_indexing_policy() in mod.rs returns; None: the service's
# default). The checks compare cosmos.bicep with this, and this with mod.rs.
COSMOS_STORE_RS = Path("shared/src/store/cosmos/mod.rs")
COSMOS_CONTAINERS = {
    "tenantdata": {"paths": ["/tenantId", "/scope"], "kind": "MultiHash", "version": 2, "defaultTtl": -1, "indexingPolicy": "store"},
    "jobs": {"paths": ["/jobName"], "kind": "Hash", "version": 2, "defaultTtl": None, "indexingPolicy": None},
}
# The app identity's data-plane role: Cosmos DB Built-in Data Contributor.
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"

# Containers in cosmos.bicep that are the Functions host's, not the store's: the lease container
# of the change feed trigger (functions/OutboxRelay). The extension would create it with partition
# key /id and TTL on without a default (CreateLeaseCollectionIfNotExistsAsync, setTTL: true), but
# only with keys; with Entra ID the data plane cannot create containers, so Bicep declares it the
# same way and createLeaseContainerIfNotExists stays false. Each must be some trigger's lease
# container, and no store container may use its name.
HOST_COSMOS_CONTAINERS = {
    "leases": {"paths": ["/id"], "kind": "Hash", "version": 2, "defaultTtl": -1, "indexingPolicy": None},
}
# Defaults of the cosmosDBTrigger binding (extension 4.x, CosmosDBTriggerAttribute and its
# binding provider): the connection prefix, the lease container; leaseConnection and
# leaseDatabaseName default to connection and databaseName.
COSMOS_TRIGGER_DEFAULTS = {"connection": "CosmosDB", "leasecontainername": "leases", "createleasecontainerifnotexists": False}

# The outbox relay: the function that publishes every message the app sends. Its Cosmos DB trigger
# hands it the outbox records and it sends each one itself through the Service Bus REST API
# (output bindings cannot set MessageId; docs/research-outbox.md, section 6), to the namespace in
# `<connection>__fullyQualifiedNamespace`, with the app identity. So its destinations need Data
# Sender and duplicate detection, though no function.json names them.
OUTBOX_RELAY = {
    "function": "OutboxRelay",
    "connection": "ServiceBusConnection",
    "queues": {"gdpr-requests", "notifications-outbound"},
    # payment-events: the payments integration's events (captured, refunded), sent through the
    # outbox like every message the app sends.
    # security-alerts: breach detection's findings (ids and counts), for the operators' SIEM.
    "topics": {"order-events", "payment-events", "security-alerts"},
}
# Service Bus subscriptions (topic, subscription) provisioned before the functions they trigger
# exist: the payments integration (PayPal) lands in the app after its infrastructure. A listed
# subscription must be in serviceBus.bicep with its Data Receiver role; once a function.json
# binds it, it is checked like any other, and its entry here can go (the check's note says so).
# None now: CancelledOrderRefund, PaymentOrderFlow and PaymentNotificationDispatch bind the
# payments' three subscriptions.
AHEAD_OF_FUNCTIONS: set = set()

# Payments (PayPal). The topic and its subscriptions, with the duplicate detection of order-events.
PAYMENT_TOPIC = "payment-events"
PAYMENT_SUBSCRIPTIONS = {("payment-events", "orders"), ("payment-events", "notifications"), ("order-events", "payments")}
# App settings that hold secrets: each must be a Key Vault reference to a secret URI the
# deployment computes, never a value.
SECRET_SETTINGS = ("GDPR_PSEUDONYM_KEY", "PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_SECRET", "PAYPAL_WEBHOOK_IDS", "ERP_PASSWORD", "CARRIER_API_KEY")
# main.bicep parameters that carry those secrets' values: @secure(), no default but '', and set
# by no .bicepparam file to anything but an environment variable (the GDPR key, which
# scripts/deploy generates) or not at all (the PayPal credentials, set out-of-band).
SECRET_PARAMS = ("gdprPseudonymKey", "paypalClientId", "paypalClientSecret", "paypalWebhookIds", "erpPassword", "carrierApiKey")
# App settings set in Azure before the app reads them (the payments integration is being built
# in the app): allowed in the Bicep without a local.settings.example.json key.
AHEAD_OF_APP: set[str] = set()
PAYPAL_BASE_URLS = {"dev": "https://api-m.sandbox.paypal.com", "staging": "https://api-m.sandbox.paypal.com",
                    "prod": "https://api-m.paypal.com"}
# The one gateway route without token validation: PayPal's webhook, on the external API, whose
# operation policy does not inherit the API's inbound section (PayPal cannot send a token; the
# handler verifies its signature).
JWT_EXEMPT_OPERATION = {"api": "externalApi", "method": "POST", "urlTemplate": "/v1/payments/webhooks/{provider}",
                        "policy": "apim-policies/external/payment-webhook.xml"}
# Azure built-in roles on Service Bus data (the ids in access.bicep's `roles`).
SB_SENDER = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
SB_RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
SB_OWNER = "090c5cfd-751d-490a-894a-3ce6f1109419"

POLICY_SECTIONS = ("inbound", "backend", "outbound", "on-error")
LOAD_TEXT_LIMIT = 131072  # characters Bicep's loadTextContent accepts


class Fail(Exception):
    pass


class Runner:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, fn: Callable[[], str | None]) -> None:
        try:
            note = fn()
        except Fail as err:
            self.failed += 1
            print(f"FAIL  {name}: {err}", flush=True)
        except Exception:  # a bug in a check is a failure too, with its trace
            self.failed += 1
            print(f"FAIL  {name}: error in the check:\n{traceback.format_exc()}", flush=True)
        else:
            self.passed += 1
            print(f"ok    {name}{' (' + note + ')' if note else ''}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Fail(message)


def rel(repo: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(repo))
    except ValueError:
        return str(path)


# ---- Bicep helpers --------------------------------------------------------------------------

_PARSER = None


def parse_bicep(path: Path) -> dict:
    global _PARSER
    from pycep import BicepParser  # from the venv (checkov depends on it)

    if _PARSER is None:
        _PARSER = BicepParser()
    try:
        return _PARSER.parse(text=path.read_text())
    except Exception as err:  # lark's message names the line and column
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise Fail(f"does not parse: {first}") from None


def resources_of(parsed: dict, rtype: str) -> list[dict]:
    found = []
    for res in (parsed.get("resources") or {}).values():
        if res.get("type") == rtype:
            config = res.get("config") or {}
            if "condition" in config and "config" in config:  # `if (...)` resource
                config = config["config"]
            if isinstance(config, dict):
                found.append(config)
    return found


def collect_dicts(node: object) -> Iterable[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from collect_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from collect_dicts(value)


def strip_comments(text: str) -> str:
    return "\n".join(re.sub(r"//.*$", "", line) for line in text.splitlines())


def literal(node: object) -> object:
    """A parsed Bicep value with negative numbers folded (pycep keeps `-1` as a minus operator)."""
    if isinstance(node, dict):
        op = node.get("operator")
        if len(node) == 1 and isinstance(op, dict) and op.get("type") == "minus":
            operands = op.get("operands") or {}
            if list(operands) == ["integer_value"] and isinstance(operands["integer_value"], int):
                return -operands["integer_value"]
        return {key: literal(value) for key, value in node.items()}
    if isinstance(node, list):
        return [literal(value) for value in node]
    return node


# ---- Bicep text analysis: declarations, references, the dependency graph -------------------
# pycep parses values but not references between declarations, so the ordering checks read the
# text: comments removed, string contents blanked (interpolations kept), offsets unchanged.


def bicep_mask(text: str) -> tuple[str, str]:
    """(text without comments, the same with string contents blanked); offsets are kept."""
    nc, masked = list(text), list(text)
    i, n = 0, len(text)
    stack: list[str] = []  # 'str' inside a '...' string, 'interp' inside ${...}, '{' for braces

    def blank(a: int, b: int, both: bool) -> None:
        for k in range(a, b):
            if text[k] != "\n":
                masked[k] = " "
                if both:
                    nc[k] = " "

    while i < n:
        c = text[i]
        if stack and stack[-1] == "str":
            if c == "\\":
                blank(i, min(i + 2, n), False)
                i += 2
            elif c == "'":
                i += 1
                stack.pop()
            elif text.startswith("${", i):
                stack.append("interp")
                i += 2
            else:
                blank(i, i + 1, False)
                i += 1
            continue
        if text.startswith("'" * 3, i):  # multi-line string, no interpolation
            j = text.find("'" * 3, i + 3)
            j = n if j < 0 else j + 3
            blank(i + 3, max(i + 3, j - 3), False)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j, True)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j, True)
            i = j
        elif c == "'":
            stack.append("str")
            i += 1
        elif c == "{":
            stack.append("{")
            i += 1
        elif c == "}":
            if stack:
                stack.pop()
            i += 1
        else:
            i += 1
    return "".join(nc), "".join(masked)


class BicepDecl:
    def __init__(self, kind: str, symbol: str, rtype: str, existing: bool, conditional: bool, body: str, masked: str) -> None:
        self.kind, self.symbol, self.type, self.existing, self.conditional = kind, symbol, rtype, existing, conditional
        self.body, self.masked = body, masked  # without comments; and with strings blanked

    @property
    def api_type(self) -> str:
        return self.type.split("@", 1)[0]

    def prop(self, name: str) -> str | None:
        """The text of a one-line `name: value` in the body (the first one)."""
        m = re.search(r"^\s*" + re.escape(name) + r"\s*:\s*(.+?)\s*$", self.body, re.M)
        return m.group(1) if m else None


class BicepFile:
    """One .bicep file's top-level declarations and the references between them."""

    DECL = re.compile(r"^(resource|module)\s+(\w+)\s+'([^']*)'\s*(existing\s*)?=\s*(if\b)?", re.M)
    NAMED = re.compile(r"^(var|param|output)\s+(\w+)\b", re.M)
    TOP = re.compile(r"^[A-Za-z@]", re.M)

    def __init__(self, path: Path, text: str | None = None) -> None:
        self.path = path
        self.text = path.read_text() if text is None else text
        self.nc, self.masked = bicep_mask(self.text)
        self.decls: dict[str, BicepDecl] = {}
        self.vars: dict[str, str] = {}
        self.params: set[str] = set()
        self.outputs: dict[str, str] = {}
        starts = [m.start() for m in self.TOP.finditer(self.nc)] + [len(self.nc)]

        def end_of(pos: int) -> int:
            return next(s for s in starts if s > pos)

        for m in self.DECL.finditer(self.nc):
            end = end_of(m.start())
            self.decls[m.group(2)] = BicepDecl(m.group(1), m.group(2), m.group(3), bool(m.group(4)), bool(m.group(5)),
                                               self.nc[m.start():end], self.masked[m.start():end])
        for m in self.NAMED.finditer(self.nc):
            end = end_of(m.start())
            if m.group(1) == "var":
                self.vars[m.group(2)] = self.masked[m.end():end]
            elif m.group(1) == "param":
                self.params.add(m.group(2))
            else:
                self.outputs[m.group(2)] = self.nc[m.end():end]

    def refs(self, masked_body: str, own: str = "") -> set[str]:
        """Declarations and variables a body names: not property names (after a dot), not
        object keys (`name:` at the start of a line)."""
        names = set(self.decls) | set(self.vars)
        found = set()
        for m in re.finditer(r"(?<![.\w])([A-Za-z_]\w*)\b", masked_body):
            name = m.group(1)
            if name not in names or name == own:
                continue
            line_start = masked_body.rfind("\n", 0, m.start()) + 1
            if masked_body[line_start:m.start()].strip() == "" and re.match(r"\s*:", masked_body[m.end():]):
                continue  # an object key
            found.add(name)
        return found

    def deps(self, symbol: str) -> set[str]:
        """The deployed declarations `symbol` depends on directly: the ones it names, and those
        named by the variables and `existing` resources it uses."""
        todo = list(self.refs(self.decls[symbol].masked, symbol))
        out, seen = set(), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self.vars:
                todo.extend(self.refs(self.vars[name], name))
            elif self.decls[name].existing:
                todo.extend(self.refs(self.decls[name].masked, name))
            else:
                out.add(name)
        return out

    def ancestors(self, symbol: str) -> set[str]:
        out, todo = set(), [symbol]
        while todo:
            for dep in self.deps(todo.pop()):
                if dep not in out:
                    out.add(dep)
                    todo.append(dep)
        return out

    def of_type(self, api_type: str, existing: bool | None = False) -> list[BicepDecl]:
        return [d for d in self.decls.values() if d.kind == "resource" and d.api_type == api_type
                and (existing is None or d.existing == existing)]

    def modules(self) -> list[BicepDecl]:
        return [d for d in self.decls.values() if d.kind == "module"]

    def module_file(self, decl: BicepDecl) -> Path:
        return (self.path.parent / decl.type).resolve()


ROLE_TYPES = ("Microsoft.Authorization/roleAssignments", "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")
WAIT_TYPE = "Microsoft.Resources/deploymentScripts"
SECRET_TYPE = "Microsoft.KeyVault/vaults/secrets"


def bicep_reads_secret(text: str) -> bool:
    """Reads the function key (listKeys on the host) or a Key Vault secret's value (a Key Vault
    reference in app settings, a Key Vault-backed named value, getSecret)."""
    return bool(re.search(r"listKeys\([^)]*/host/|@Microsoft\.KeyVault\(|secretIdentifier\s*:|\.getSecret\(", text))


def bicep_tree(path: Path, seen: set | None = None) -> list[BicepFile]:
    """The file and every module file under it, each once."""
    seen = set() if seen is None else seen
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    f = BicepFile(path)
    out = [f]
    for mod in f.modules():
        out.extend(bicep_tree(f.module_file(mod), seen))
    return out


# The private DNS zone names Microsoft documents ("Azure Private Endpoint private DNS zone
# values") for each cloud, and the environment() values that lead to them.
CLOUDS = {
    "AzureCloud": {"suffixes": {"storage": "core.windows.net", "keyvaultDns": ".vault.azure.net"},
                   "zones": {"blob": "privatelink.blob.core.windows.net", "queue": "privatelink.queue.core.windows.net",
                             "table": "privatelink.table.core.windows.net", "file": "privatelink.file.core.windows.net",
                             "cosmos": "privatelink.documents.azure.com", "serviceBus": "privatelink.servicebus.windows.net",
                             "keyVault": "privatelink.vaultcore.azure.net", "sites": "privatelink.azurewebsites.net",
                             "signalr": "privatelink.service.signalr.net"}},
    "AzureUSGovernment": {"suffixes": {"storage": "core.usgovcloudapi.net", "keyvaultDns": ".vault.usgovcloudapi.net"},
                          "zones": {"blob": "privatelink.blob.core.usgovcloudapi.net", "queue": "privatelink.queue.core.usgovcloudapi.net",
                                    "table": "privatelink.table.core.usgovcloudapi.net", "file": "privatelink.file.core.usgovcloudapi.net",
                                    "cosmos": "privatelink.documents.azure.us", "serviceBus": "privatelink.servicebus.usgovcloudapi.net",
                                    "keyVault": "privatelink.vaultcore.usgovcloudapi.net", "sites": "privatelink.azurewebsites.us",
                                    "signalr": "privatelink.signalr.azure.us"}},
    "AzureChinaCloud": {"suffixes": {"storage": "core.chinacloudapi.cn", "keyvaultDns": ".vault.azure.cn"},
                        "zones": {"blob": "privatelink.blob.core.chinacloudapi.cn", "queue": "privatelink.queue.core.chinacloudapi.cn",
                                  "table": "privatelink.table.core.chinacloudapi.cn", "file": "privatelink.file.core.chinacloudapi.cn",
                                  "cosmos": "privatelink.documents.azure.cn", "serviceBus": "privatelink.servicebus.chinacloudapi.cn",
                                  "keyVault": "privatelink.vaultcore.azure.cn", "sites": "privatelink.chinacloudsites.cn",
                                  "signalr": "privatelink.signalr.azure.cn"}},
}


class BicepEval:
    """Evaluates the small expression language the zone names use: strings with ${...},
    variables, objects, property access, indexing, environment() and replace()."""

    def __init__(self, f: BicepFile, environment: dict) -> None:
        self.f, self.env, self.memo = f, environment, {}

    def var(self, name: str) -> object:
        if name not in self.memo:
            m = re.search(r"^var\s+" + re.escape(name) + r"\s*=\s*", self.f.nc, re.M)
            if not m:
                raise Fail(f"{self.f.path.name}: no var {name}")
            self.memo[name] = self.parse(self.f.nc, m.end())[0]
        return self.memo[name]

    def parse(self, t: str, i: int) -> tuple[object, int]:
        def ws(i: int, newlines: bool = False) -> int:
            while i < len(t) and (t[i] in " \t" or (newlines and t[i] in "\r\n")):
                i += 1
            return i

        i = ws(i)
        if t[i] == "'":
            out, i = "", i + 1
            while t[i] != "'":
                if t.startswith("${", i):
                    val, i = self.parse(t, i + 2)
                    i = ws(i)
                    if t[i] != "}":
                        raise Fail(f"{self.f.path.name}: unsupported interpolation near {t[i:i + 30]!r}")
                    out += str(val)
                    i += 1
                elif t[i] == "\\":
                    out += t[i + 1]
                    i += 2
                else:
                    out += t[i]
                    i += 1
            val, i = out, i + 1
        elif t[i] == "{":
            val, i = {}, i + 1
            while True:
                i = ws(i, True)
                if t[i] == "}":
                    i += 1
                    break
                m = re.match(r"'?(\w+)'?\s*:", t[i:])
                if not m:
                    raise Fail(f"{self.f.path.name}: unsupported object near {t[i:i + 30]!r}")
                item, i = self.parse(t, i + m.end())
                val[m.group(1)] = item
        else:
            m = re.match(r"[A-Za-z_]\w*", t[i:])
            if not m:
                raise Fail(f"{self.f.path.name}: unsupported expression near {t[i:i + 30]!r}")
            name, i = m.group(0), i + m.end()
            if i < len(t) and t[i] == "(":
                args, i = [], i + 1
                while True:
                    i = ws(i)
                    if t[i] == ")":
                        i += 1
                        break
                    arg, i = self.parse(t, i)
                    args.append(arg)
                    i = ws(i)
                    if t[i] == ",":
                        i += 1
                if name == "environment" and not args:
                    val = self.env
                elif name == "replace" and len(args) == 3:
                    val = str(args[0]).replace(str(args[1]), str(args[2]))
                else:
                    raise Fail(f"{self.f.path.name}: function {name}() is not one this check evaluates")
            else:
                val = self.var(name)
        while i < len(t):
            if t[i] == "." and re.match(r"\.[A-Za-z_]", t[i:i + 2]):
                m = re.match(r"\.(\w+)", t[i:])
                if not isinstance(val, dict) or m.group(1) not in val:
                    raise Fail(f"{self.f.path.name}: no property {m.group(1)} (cloud {self.env['name']})")
                val, i = val[m.group(1)], i + m.end()
            elif t[i] == "[":
                key, i = self.parse(t, i + 1)
                i = ws(i)
                if t[i] != "]" or not isinstance(val, dict) or key not in val:
                    raise Fail(f"{self.f.path.name}: no entry {key!r} (cloud {self.env['name']})")
                val, i = val[key], i + 1
            else:
                break
        return val, i


# ---- Rust helpers (read, never built: the data model and settings the app expects) -----------


def rust_json_literal(text: str, function: str) -> object:
    """The `json!(...)` literal in a Rust function's body, as Python data."""
    m = re.search(r"\bfn\s+" + re.escape(function) + r"\s*\(", text)
    if not m:
        raise Fail(f"no fn {function}")
    start = text.find("json!(", m.end())
    if start < 0:
        raise Fail(f"fn {function} has no json! literal")
    i = j = start + len("json!(")
    depth, in_string = 1, False
    while j < len(text) and depth:
        c = text[j]
        if in_string:
            if c == "\\":
                j += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        j += 1
    try:
        return json.loads(text[i:j - 1])
    except ValueError as err:
        raise Fail(f"the json! literal in fn {function} is not plain JSON ({err}); compare it by hand") from None


def rust_store_containers(text: str) -> dict:
    """The containers the store creates with a key (provision_database in mod.rs), in the shape
    of COSMOS_CONTAINERS. PartitionKeyDefinition::from infers the kind from the number of paths
    and uses version 2."""
    consts = dict(re.findall(r'\bconst\s+(\w+)\s*:\s*&str\s*=\s*"([^"]*)"', text))
    found = {}
    matches = list(re.finditer(r"ContainerProperties::new\(\s*(\w+)\s*,\s*PartitionKeyDefinition::from\(([^)]*)\)\s*\)", text))
    for n, m in enumerate(matches):
        name = consts.get(m.group(1))
        if name is None:
            raise Fail(f"{COSMOS_STORE_RS}: container {m.group(1)} is not a string constant")
        end = matches[n + 1].start() if n + 1 < len(matches) else text.find("];", m.end())
        chain = text[m.end():end]
        paths = re.findall(r'"([^"]*)"', m.group(2))
        ttl = re.search(r"with_default_ttl\(([^)]*)\)", chain)
        if ttl and ttl.group(1).strip() != "TimeToLive::NoDefault":
            raise Fail(f"{COSMOS_STORE_RS}: container {name} has default TTL {ttl.group(1)}; update COSMOS_CONTAINERS and this check")
        found[name] = {
            "paths": paths,
            "kind": "MultiHash" if len(paths) > 1 else "Hash",
            "version": 2,
            "defaultTtl": -1 if ttl else None,
            "indexingPolicy": "store" if "with_indexing_policy(" in chain else None,
        }
    if not found:
        raise Fail(f"{COSMOS_STORE_RS}: no ContainerProperties::new(NAME, PartitionKeyDefinition::from(...)) found; update this check")
    return found


# ---- Function bindings and the Bicep they need --------------------------------------------


def bicep_app_settings(text: str) -> dict[str, str]:
    """The `{ name: 'KEY', value: EXPR }` entries of functionApp.bicep's `var appSettings`: key ->
    the value expression's text ('literal' keeps its quotes, a variable is its name)."""
    m = re.search(r"^var\s+appSettings\s*=\s*\[(.*?)^\]", text, re.M | re.S)
    if not m:
        raise Fail("functionApp.bicep has no `var appSettings = [ ... ]`")
    found = {}
    for line in m.group(1).splitlines():
        entry = re.match(r"\s*\{\s*name:\s*'([^']+)'\s*,\s*value:\s*(.*)\}\s*(?://[^}]*)?$", line)
        if entry:
            found[entry.group(1)] = entry.group(2).strip()
    return found


def timespan_seconds(value: str) -> float:
    """A .NET TimeSpan as function.json writes it: [d.]hh:mm:ss[.fff]."""
    m = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", str(value).strip())
    if not m:
        raise ValueError(f"not a TimeSpan: {value!r}")
    return int(m.group(1) or 0) * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))


def iso_duration_seconds(value: str) -> float:
    """An ISO 8601 duration without years or months (PnDTnHnMnS), as Service Bus takes them."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", str(value).strip())
    if not m or str(value).strip() in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def cosmos_trigger_problems(functions: dict[str, dict], settings: dict[str, str], containers: dict[str, dict],
                            database: str) -> tuple[list[str], list[str]]:
    """What is wrong between the functions' cosmosDBTrigger bindings and the Bicep, and a note per
    trigger. `functions`: folder name -> function.json; `settings`: bicep_app_settings();
    `containers`: cosmos.bicep's containers (name -> paths, kind, version, defaultTtl); `database`:
    the database name Bicep creates. The host reads function.json keys case-insensitively."""
    problems, notes = [], []
    lease_containers = set()

    def connection(fn: str, what: str, name: str) -> None:
        endpoint = f"{name}__accountEndpoint"
        if endpoint not in settings:
            problems.append(f"{fn}: {what} {name} has no {endpoint} in the Bicep app settings "
                            "(the extension needs it for an identity-based connection)")
            return
        if "COSMOS_ENDPOINT" in settings and settings[endpoint] != settings["COSMOS_ENDPOINT"]:
            problems.append(f"{fn}: {endpoint} is {settings[endpoint]}, not the store's account (COSMOS_ENDPOINT: {settings['COSMOS_ENDPOINT']})")
        if settings.get(f"{name}__credential") != "'managedidentity'":
            problems.append(f"{fn}: {name}__credential must be 'managedidentity' (is {settings.get(name + '__credential')})")
        if f"{name}__clientId" not in settings:
            problems.append(f"{fn}: {name}__clientId is not set (the user-assigned identity would not be used)")
        elif "AZURE_CLIENT_ID" in settings and settings[f"{name}__clientId"] != settings["AZURE_CLIENT_ID"]:
            problems.append(f"{fn}: {name}__clientId is {settings[name + '__clientId']}, not the app identity's (AZURE_CLIENT_ID: {settings['AZURE_CLIENT_ID']})")

    def database_ok(fn: str, key: str, value: object) -> None:
        m = re.fullmatch(r"%(\w+)%", str(value))
        if m and m.group(1) not in settings:
            problems.append(f"{fn}: {key} {value} names an app setting the Bicep does not set")
        elif not m and value != database:
            problems.append(f"{fn}: {key} {value!r} is not the database Bicep creates ({database!r})")

    for fn, fj in sorted(functions.items()):
        triggers = [{str(k).lower(): v for k, v in b.items()} for b in fj.get("bindings", [])
                    if str(b.get("type", "")).lower() == "cosmosdbtrigger"]
        for b in triggers:
            conn = b.get("connection", COSMOS_TRIGGER_DEFAULTS["connection"])
            connection(fn, "connection", conn)
            if b.get("leaseconnection", conn) != conn:
                connection(fn, "leaseConnection", b["leaseconnection"])
            db = b.get("databasename")
            database_ok(fn, "databaseName", db)
            if b.get("leasedatabasename", db) != db:
                database_ok(fn, "leaseDatabaseName", b["leasedatabasename"])
            watched = b.get("containername")
            if watched not in containers:
                problems.append(f"{fn}: containerName {watched!r} is not a container in cosmos.bicep")
            lease = b.get("leasecontainername", COSMOS_TRIGGER_DEFAULTS["leasecontainername"])
            lease_containers.add(lease)
            if lease == watched:
                problems.append(f"{fn}: the lease container must differ from the monitored one ({lease!r})")
            elif lease not in containers:
                problems.append(f"{fn}: leaseContainerName {lease!r} is not a container in cosmos.bicep "
                                "(the identity cannot create it; declare it with partition key /id)")
            elif containers[lease].get("paths") != ["/id"]:
                problems.append(f"{fn}: the lease container {lease!r} has partition key {containers[lease].get('paths')}, the extension needs ['/id']")
            if b.get("createleasecontainerifnotexists", COSMOS_TRIGGER_DEFAULTS["createleasecontainerifnotexists"]) is not False:
                problems.append(f"{fn}: createLeaseContainerIfNotExists must be false (creating a container needs keys; "
                                "the Entra ID data plane cannot, so the listener would not start)")
            retry = {str(k).lower(): v for k, v in (fj.get("retry") or {}).items()}
            if not retry:
                problems.append(f"{fn}: no `retry` in function.json: a failed invocation's batch would be checkpointed and lost; "
                                "add {\"strategy\": \"exponentialBackoff\", \"maxRetryCount\": -1, ...}")
            elif retry.get("maxretrycount") != -1:
                problems.append(f"{fn}: retry.maxRetryCount is {retry.get('maxretrycount')!r}: after the last attempt the batch is "
                                "checkpointed and lost; use -1 (retry until it succeeds)")
            elif retry.get("strategy") not in ("fixedDelay", "exponentialBackoff"):
                problems.append(f"{fn}: retry.strategy {retry.get('strategy')!r} is neither fixedDelay nor exponentialBackoff")
            notes.append(f"{fn} on {watched} (leases {lease}, {conn})")
    unused = sorted(set(HOST_COSMOS_CONTAINERS) & set(containers) - lease_containers)
    if unused:
        problems.append(f"cosmos.bicep declares the host container(s) {unused}, which no cosmosDBTrigger uses as its lease container")
    return problems, notes


# ---- Payments (PayPal): messaging, secrets, the webhook route, the outbound IP --------------


def entity_paths(f: BicepFile) -> dict[str, tuple]:
    """Service Bus resources of a Bicep file (declared or existing), by symbol: () the namespace,
    (queue or topic,), (topic, subscription); from their literal names and `parent`s."""
    paths: dict[str, tuple] = {}

    def path_of(symbol: str, depth: int = 0) -> tuple | None:
        if symbol in paths:
            return paths[symbol]
        d = f.decls.get(symbol)
        if d is None or d.kind != "resource" or depth > 5 or not d.api_type.startswith("Microsoft.ServiceBus/namespaces"):
            return None
        if d.api_type == "Microsoft.ServiceBus/namespaces":
            paths[symbol] = ()
            return ()
        name = re.fullmatch(r"'([^']*)'", d.prop("name") or "")
        parent = path_of(d.prop("parent") or "", depth + 1)
        if name is None or parent is None:
            return None
        paths[symbol] = parent + (name.group(1),)
        return paths[symbol]

    for symbol in list(f.decls):
        path_of(symbol)
    return paths


def role_grants(f: BicepFile, scopes: dict[str, tuple]) -> dict[tuple, set[str]]:
    """The file's unconditional role assignments to `principalId` (the app identity) by scope
    path (`scopes`: symbol -> path), as role definition ids from its `var roles = { name: 'id' }`."""
    block = re.search(r"^var\s+roles\s*=\s*\{(.*?)^\}", f.nc, re.M | re.S)
    roles = dict(re.findall(r"(\w+)\s*:\s*'([0-9a-f-]{36})'", block.group(1))) if block else {}
    grants: dict[tuple, set[str]] = {}
    for ra in f.of_type("Microsoft.Authorization/roleAssignments"):
        role = re.search(r"roles\.(\w+)", ra.prop("roleDefinitionId") or "")
        scope = scopes.get(ra.prop("scope") or "")
        if ra.conditional or role is None or scope is None or ra.prop("principalId") != "principalId":
            continue
        grants.setdefault(scope, set()).add(roles.get(role.group(1), role.group(1)))
    return grants


def payment_messaging_problems(sb: BicepFile, access: BicepFile) -> list[str]:
    """payment-events exists with the duplicate detection of order-events (the relay resends
    within the window), its subscriptions and order-events/payments exist, and access.bicep lets
    the app identity send to the topic and receive from each subscription."""
    problems = []
    declared = {path: sb.decls[s] for s, path in entity_paths(sb).items() if not sb.decls[s].existing}
    topic = declared.get((PAYMENT_TOPIC,))
    reference = declared.get(("order-events",))
    if topic is None:
        problems.append(f"serviceBus.bicep declares no topic {PAYMENT_TOPIC}")
    else:
        if topic.prop("requiresDuplicateDetection") != "true":
            problems.append(f"{PAYMENT_TOPIC}: requiresDuplicateDetection is {topic.prop('requiresDuplicateDetection')}, expected true "
                            "(the outbox relay resends a batch after a failure; duplicate detection can only be set when the topic is created)")
        window = topic.prop("duplicateDetectionHistoryTimeWindow")
        want = reference.prop("duplicateDetectionHistoryTimeWindow") if reference is not None else None
        if want is None:
            problems.append("serviceBus.bicep: order-events has no duplicateDetectionHistoryTimeWindow to compare with")
        elif window != want:
            problems.append(f"{PAYMENT_TOPIC}: duplicateDetectionHistoryTimeWindow is {window}, not order-events' ({want})")
        if topic.conditional:
            problems.append(f"{PAYMENT_TOPIC} is declared under a condition")
    for sub in sorted(PAYMENT_SUBSCRIPTIONS):
        if sub not in declared:
            problems.append(f"serviceBus.bicep declares no subscription {sub[1]} on topic {sub[0]}")
    grants = role_grants(access, entity_paths(access))

    def granted(path: tuple, wanted: set[str]) -> bool:
        return any(grants.get(path[:n], set()) & wanted for n in range(len(path) + 1))

    if not granted((PAYMENT_TOPIC,), {SB_SENDER, SB_OWNER}):
        problems.append(f"access.bicep gives the app identity no Azure Service Bus Data Sender on {PAYMENT_TOPIC}")
    for sub in sorted(PAYMENT_SUBSCRIPTIONS):
        if not granted(sub, {SB_RECEIVER, SB_OWNER}):
            problems.append(f"access.bicep gives the app identity no Azure Service Bus Data Receiver on {'/'.join(sub)}")
    return problems


KEY_VAULT_REFERENCE = re.compile(r"'@Microsoft\.KeyVault\(SecretUri=\$\{[A-Za-z_][\w.]*\}\)'")


def secret_settings_problems(settings: dict[str, str]) -> list[str]:
    """Each secret setting (SECRET_SETTINGS) is a Key Vault reference whose URI the deployment
    computes (`'@Microsoft.KeyVault(SecretUri=${...})'`), never a value. `settings`:
    bicep_app_settings()."""
    problems = []
    for key in SECRET_SETTINGS:
        value = settings.get(key)
        if value is None:
            problems.append(f"{key} is not set in the Bicep app settings")
        elif not KEY_VAULT_REFERENCE.fullmatch(value):
            problems.append(f"{key} is {value if not value.startswith(chr(39)) else 'a literal'}, not a Key Vault reference "
                            "'@Microsoft.KeyVault(SecretUri=${<secret URI from the keyVault module>})'")
    return problems


def secret_param_problems(main_text: str, param_texts: dict[str, str]) -> list[str]:
    """The parameters carrying secret values (SECRET_PARAMS): @secure() strings in main.bicep
    with no default but '' and, in the .bicepparam files (name -> text), set at most from an
    environment variable, never to a value."""
    problems = []
    lines = main_text.splitlines()
    for name in SECRET_PARAMS:
        at = next((n for n, line in enumerate(lines) if re.match(r"param\s+" + name + r"\s", line)), None)
        if at is None:
            problems.append(f"main.bicep has no parameter {name}")
            continue
        decorators, k = [], at - 1
        while k >= 0 and lines[k].startswith("@"):
            decorators.append(lines[k])
            k -= 1
        if not any(d.strip() == "@secure()" for d in decorators):
            problems.append(f"main.bicep: parameter {name} is not @secure() (its value would show in the deployment history)")
        m = re.match(r"param\s+" + name + r"\s+string\s*(?:=\s*(.*?))?\s*(?://.*)?$", lines[at])
        if m is None:
            problems.append(f"main.bicep: parameter {name} is not a string")
        elif m.group(1) is not None and m.group(1) != "''":
            problems.append(f"main.bicep: parameter {name} has the default {m.group(1)}; a secret has no default in the repository")
    for file, text in sorted(param_texts.items()):
        for name, value in re.findall(r"^param\s+(\w+)\s*=\s*(.+?)\s*$", bicep_mask(text)[0], re.M):
            if name in SECRET_PARAMS and not value.startswith("readEnvironmentVariable("):
                problems.append(f"{file} sets the secret {name} to {value[:20]}...; pass it from an environment variable or out-of-band, never in the repository")
    return problems


def paypal_base_url_problems(param_texts: dict[str, str]) -> list[str]:
    """PAYPAL_BASE_URL per environment: the sandbox in dev and staging, live in prod."""
    problems = []
    for env, want in PAYPAL_BASE_URLS.items():
        text = param_texts.get(f"{env}.bicepparam")
        if text is None:
            problems.append(f"no {env}.bicepparam")
            continue
        m = re.search(r"^param\s+paypalBaseUrl\s*=\s*'([^']*)'", bicep_mask(text)[0], re.M)
        if m is None:
            problems.append(f"{env}.bicepparam does not set paypalBaseUrl to a literal")
        elif m.group(1) != want:
            problems.append(f"{env}.bicepparam: paypalBaseUrl is {m.group(1)}, expected {want}")
    return problems


def policy_path(f: BicepFile, value: str | None) -> str | None:
    """The repository path of the XML a policy `value:` loads (directly or through a var)."""
    if value is None:
        return None
    m = re.search(r"loadTextContent\('(?:\.\./)*([^']+)'\)", value)
    if m is None and re.fullmatch(r"\w+", value):
        var = re.search(r"^var\s+" + re.escape(value) + r"\s*=\s*(.*)$", f.nc, re.M)
        m = re.search(r"loadTextContent\('(?:\.\./)*([^']+)'\)", var.group(1)) if var else None
    return m.group(1) if m else None


SIGNALR_USER_HEADER = "x-ms-signalr-userid"


def signalr_user_header_problems(policy: "ET.Element | None", name: str) -> list[str]:
    """The SignalR user id header (what NotificationsNegotiate's binding reads) is set in
    <inbound> from the validated token only: overridden after validate-jwt, from the jwt
    variable, never before validation."""
    node = policy.find("inbound") if policy is not None else None
    if node is None:
        return [f"{name}: no <inbound>"]
    children = list(node)
    jwt_at = next((i for i, el in enumerate(children) if el.tag == "validate-jwt"), None)
    sets = [(i, el) for i, el in enumerate(children)
            if el.tag == "set-header" and el.get("name", "").lower() == SIGNALR_USER_HEADER]
    if jwt_at is None or not sets:
        return [f"{name}: does not set {SIGNALR_USER_HEADER} after validate-jwt"]
    problems = []
    for i, el in sets:
        value = "".join(v.text or "" for v in el.iter("value"))
        if i < jwt_at or el.get("exists-action") != "override" or 'context.Variables["jwt"]' not in value:
            problems.append(f"{name}: {SIGNALR_USER_HEADER} must be overridden after validate-jwt from the validated token (the jwt variable)")
    return problems


def jwt_exemption_problems(apim: BicepFile, policies: dict[str, ET.Element]) -> tuple[list[str], list[str]]:
    """Token validation on every gateway route but one. Every API's policy validates a JWT in
    <inbound>; an operation policy without <base /> in <inbound> (so without the API's
    validate-jwt) and without its own validate-jwt is allowed only for JWT_EXEMPT_OPERATION, which
    must exist and be exempt; that one forwards the body and the PAYPAL-* headers untouched and is
    rate-limited. `policies`: repository path -> parsed XML. Returns (problems, notes)."""
    problems, notes = [], []
    api_t = "Microsoft.ApiManagement/service/apis"

    def inbound(path: str | None, what: str) -> ET.Element | None:
        root = policies.get(path or "")
        if root is None:
            problems.append(f"{what}: policy {path or '(not a loadTextContent)'} not found or not parsed")
            return None
        node = root.find("inbound")
        if node is None:
            problems.append(f"{what}: {path} has no <inbound>")
        return node

    apis = {d.symbol: d for d in apim.of_type(api_t)}
    api_policies = {d.prop("parent"): d for d in apim.of_type(api_t + "/policies")}
    for symbol in sorted(apis):
        pol = api_policies.get(symbol)
        if pol is None:
            problems.append(f"API {symbol} has no policy, so no validate-jwt")
            continue
        node = inbound(policy_path(apim, pol.prop("value")), f"API {symbol}")
        if node is not None and node.find("validate-jwt") is None:
            problems.append(f"API {symbol}: its policy has no validate-jwt in <inbound>")
    operations = {d.symbol: d for d in apim.of_type(api_t + "/operations")}
    exempt = []
    for pol in apim.of_type(api_t + "/operations/policies"):
        op = operations.get(pol.prop("parent") or "")
        if op is None or re.search(r"=\s*\[\s*for\b", pol.body):
            problems.append(f"operation policy {pol.symbol}: cannot tell which operation it applies to (a loop, or no declared parent)")
            continue
        path = policy_path(apim, pol.prop("value"))
        node = inbound(path, f"operation {op.symbol}")
        if node is None:
            continue
        if node.find("base") is not None or node.find("validate-jwt") is not None:
            continue
        exempt.append(op.symbol)
        where = f"{op.prop('method')} {op.prop('urlTemplate')} on {op.prop('parent')}"
        want = JWT_EXEMPT_OPERATION
        if (op.prop("parent"), op.prop("method"), op.prop("urlTemplate")) != (want["api"], f"'{want['method']}'", f"'{want['urlTemplate']}'") \
                or path != want["policy"]:
            problems.append(f"operation {op.symbol} ({where}, {path}) skips the API's validate-jwt; only "
                            f"{want['method']} {want['urlTemplate']} on {want['api']} ({want['policy']}) may")
            continue
        notes.append(f"{want['method']} {want['urlTemplate']} without a token")
        # The handler verifies PayPal's signature over the exact body and the PAYPAL-* headers.
        text = "\n".join([el.text or "" for el in policies[path].iter()] + [v for el in policies[path].iter() for v in el.attrib.values()])
        if re.search(r"Body\.As(?:<[^>]*>)?\((?![^)]*preserveContent:\s*true)", text) or node.find(".//set-body") is not None:
            problems.append(f"{path}: the webhook's body must reach the handler as it came (no set-body; Body.As only with preserveContent: true)")
        touched = [el.get("name") for el in policies[path].iter("set-header") if str(el.get("name", "")).upper().startswith("PAYPAL-")]
        if touched:
            problems.append(f"{path}: the webhook's PAYPAL-* headers must pass unchanged; it sets or removes {touched}")
        if node.find("rate-limit-by-key") is None and node.find("rate-limit") is None:
            problems.append(f"{path}: the webhook route is not rate-limited")
        if "forward-to-function-app" not in [el.get("fragment-id") for el in node.iter("include-fragment")]:
            problems.append(f"{path}: the webhook does not include forward-to-function-app")
    declared = [op for op in operations.values() if (op.prop("parent"), op.prop("method"), op.prop("urlTemplate"))
                == (JWT_EXEMPT_OPERATION["api"], f"'{JWT_EXEMPT_OPERATION['method']}'", f"'{JWT_EXEMPT_OPERATION['urlTemplate']}'")]
    if not declared:
        problems.append(f"no operation {JWT_EXEMPT_OPERATION['method']} {JWT_EXEMPT_OPERATION['urlTemplate']} on {JWT_EXEMPT_OPERATION['api']}")
    elif not any(op.symbol in exempt for op in declared):
        problems.append(f"{JWT_EXEMPT_OPERATION['method']} {JWT_EXEMPT_OPERATION['urlTemplate']} inherits the API's validate-jwt: "
                        "the payment provider sends no token, so its webhook calls would be refused")
    return problems, notes


def bicep_operations(apim: BicepFile) -> list[tuple[str, str]]:
    """(METHOD, urlTemplate) of the operations apim.bicep declares: one per resource, or one per
    entry of the `var` list a looped resource iterates over. See bicep_operation_names."""
    found = []
    for d in apim.of_type("Microsoft.ApiManagement/service/apis/operations"):
        loop = re.search(r"\[\s*for\s+(\w+)\s+in\s+(\w+)\s*:", d.body)
        if loop:
            var = re.search(r"^var\s+" + re.escape(loop.group(2)) + r"\s*=\s*\[(.*?)^\]", apim.nc, re.M | re.S)
            for block in re.split(r"^\s{2}\{\s*$", var.group(1) if var else "", flags=re.M):
                method = re.search(r"^\s*method:\s*'(\w+)'", block, re.M)
                url = re.search(r"^\s*urlTemplate:\s*'([^']+)'", block, re.M)
                if method and url:
                    found.append((method.group(1).upper(), url.group(1)))
        else:
            method = re.fullmatch(r"'(\w+)'", d.prop("method") or "")
            url = re.fullmatch(r"'([^']+)'", d.prop("urlTemplate") or "")
            if method and url:
                found.append((method.group(1).upper(), url.group(1)))
    return found


def bicep_operation_names(apim: BicepFile) -> dict[tuple[str, str], str]:
    """(METHOD, urlTemplate) -> resource name of the operations apim.bicep declares one by one (a
    declaration named like the imported operation's operationId updates that operation)."""
    names = {}
    for d in apim.of_type("Microsoft.ApiManagement/service/apis/operations"):
        method = re.fullmatch(r"'(\w+)'", d.prop("method") or "")
        url = re.fullmatch(r"'([^']+)'", d.prop("urlTemplate") or "")
        name = re.fullmatch(r"'([^']+)'", d.prop("name") or "")
        if method and url and name:
            names[(method.group(1).upper(), url.group(1))] = name.group(1)
    return names


def nat_gateway_problems(network: BicepFile, function_app_text: str, main: BicepFile) -> list[str]:
    """The function app's integration subnet has a NAT gateway with a static Standard public IP,
    the app routes all outbound traffic through the VNet, and main.bicep outputs the IP."""
    problems = []
    nats = {d.symbol: d for d in network.of_type("Microsoft.Network/natGateways")}
    ips = {d.symbol: d for d in network.of_type("Microsoft.Network/publicIPAddresses")}
    subnet = re.search(r"/subnets/([\w-]+)'", network.outputs.get("functionSubnetId", ""))
    if subnet is None:
        return ["network.bicep has no output functionSubnetId ending in /subnets/<name>"]
    subnet = subnet.group(1)
    # The subnet, inline in the VNet (subnets: [ { name: ..., properties: { ... } } ]) or a child resource.
    blocks = []
    for vnet in network.of_type("Microsoft.Network/virtualNetworks"):
        names = list(re.finditer(r"^(\s*)name:\s*'([^']+)'", vnet.body, re.M))
        for m in names:
            if m.group(2) != subnet:
                continue
            # The subnet's entry ends where the next entry of the same depth begins.
            after = [n for n in names if n.start() > m.start() and len(n.group(1)) == len(m.group(1))]
            blocks.append(vnet.body[m.start():after[0].start() if after else len(vnet.body)])
    blocks += [d.body for d in network.of_type("Microsoft.Network/virtualNetworks/subnets") if d.prop("name") == f"'{subnet}'"]
    if not blocks:
        return [f"network.bicep: no subnet {subnet} (the function app's, per output functionSubnetId)"]
    attached = [m.group(1) for b in blocks for m in re.finditer(r"natGateway\s*:\s*\{\s*id\s*:\s*(\w+)\.id\s*\}", b)]
    nat = next((nats[s] for s in attached if s in nats), None)
    if nat is None:
        problems.append(f"network.bicep: subnet {subnet} (the function app's integration subnet) has no natGateway of a NAT gateway declared there")
    else:
        if nat.conditional:
            problems.append(f"NAT gateway {nat.symbol} is declared under a condition")
        if not re.search(r"sku\s*:\s*\{\s*name\s*:\s*'Standard'", nat.body):
            problems.append(f"NAT gateway {nat.symbol}: sku is not Standard")
        ip_refs = re.findall(r"publicIpAddresses\s*:\s*\[(.*?)\]", nat.body, re.S)
        pips = [s for block in ip_refs for s in re.findall(r"id\s*:\s*(\w+)\.id", block) if s in ips]
        if not pips:
            problems.append(f"NAT gateway {nat.symbol} has no public IP address declared in network.bicep (publicIpAddresses)")
        for s in pips:
            if not re.search(r"sku\s*:\s*\{\s*name\s*:\s*'Standard'", ips[s].body):
                problems.append(f"public IP {s}: sku is not Standard (a NAT gateway takes Standard IPs only)")
            if ips[s].prop("publicIPAllocationMethod") != "'Static'":
                problems.append(f"public IP {s}: publicIPAllocationMethod is {ips[s].prop('publicIPAllocationMethod')}, expected 'Static'")
        outs = [name for name, expr in network.outputs.items() if any(re.search(r"\b" + s + r"\.properties\.ipAddress\b", expr) for s in pips)]
        net_mod = next((d.symbol for d in main.modules() if d.type.endswith("network.bicep")), None)
        if not outs:
            problems.append("network.bicep does not output the NAT gateway's public IP address")
        elif net_mod is None or not any(re.search(r"\b" + net_mod + r"\.outputs\." + o + r"\b", expr) for o in outs for expr in main.outputs.values()):
            problems.append(f"main.bicep does not output the NAT gateway's IP (network.outputs.{outs[0]}) for the allow-list")
    fa = strip_comments(function_app_text)
    if not re.search(r"^\s*vnetRouteAllEnabled\s*:\s*true\s*$", fa, re.M) and not re.search(r"allTraffic\s*:\s*true", fa):
        problems.append("functionApp.bicep does not route all outbound traffic through the VNet (vnetRouteAllEnabled / outboundVnetRouting.allTraffic): "
                        "calls to the internet would not leave through the NAT gateway")
    return problems


# ---- The checks -----------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, type=Path)
    ap.add_argument("--checkov-json", required=True, type=Path)
    ap.add_argument("--checkov-stderr", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    args = ap.parse_args()
    repo: Path = args.repo.resolve()
    work: Path = args.work
    bicep_dir = repo / "infra" / "bicep"
    policies_dir = repo / "apim-policies"
    bicep_files = sorted(bicep_dir.rglob("*.bicep"))
    param_files = sorted(bicep_dir.glob("*.bicepparam"))
    policy_files = sorted(policies_dir.rglob("*.xml"))
    openapi = policies_dir / "openapi.json"
    r = Runner()

    # -- checkov ----------------------------------------------------------------------------
    def checkov_report() -> dict:
        try:
            report = json.loads(args.checkov_json.read_text() or "null")
        except ValueError:
            report = None
        if isinstance(report, list):  # one entry per framework
            report = next((x for x in report if x.get("check_type") == "bicep"), None)
        if not isinstance(report, dict) or "summary" not in report:
            err = args.checkov_stderr.read_text().strip().splitlines()[-5:]
            raise Fail("checkov produced no report: " + " | ".join(err))
        return report

    def checkov_no_failures() -> str:
        report = checkov_report()
        failed = report["results"].get("failed_checks", [])
        expect(not failed, "; ".join(
            f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}) {c['check_name']}"
            for c in failed))
        s = report["summary"]
        return f"{s['passed']} passed, {s['skipped']} skipped"

    # Resource types checkov has Bicep checks for; a file declaring one must show up in its results.
    checked_types = {
        "Microsoft.Storage/storageAccounts", "Microsoft.Web/sites", "Microsoft.Web/serverfarms",
        "Microsoft.KeyVault/vaults", "Microsoft.DocumentDB/databaseAccounts",
        "Microsoft.ApiManagement/service", "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/networkSecurityGroups",
    }

    def checkov_parsed_everything() -> str:
        report = checkov_report()
        errors = report["summary"].get("parsing_errors", 0)
        expect(errors == 0, f"checkov could not parse {errors} file(s); see the 'bicep parses' checks")
        scanned = {c["file_path"].lstrip("/") for k in ("passed_checks", "failed_checks", "skipped_checks")
                   for c in report["results"].get(k, [])}
        unseen = []
        for path, tree in parsed.items():
            declared = {res.get("type") for res in (tree.get("resources") or {}).values() if not res.get("existing")}
            if declared & checked_types and str(path.relative_to(bicep_dir)) not in scanned:
                unseen.append(str(path.relative_to(bicep_dir)))
        expect(not unseen, f"checkov checked nothing in {unseen}")
        return f"{len(bicep_files)} files, {report['summary']['resource_count']} resources"

    def checkov_skips_justified() -> str:
        report = checkov_report()
        skipped = report["results"].get("skipped_checks", [])
        weak = [f"{c['check_id']} {c['resource']}" for c in skipped
                if len((c.get("check_result") or {}).get("suppress_comment", "").strip()) < 20
                or (c.get("check_result") or {}).get("suppress_comment", "").startswith("No comment")]
        expect(not weak, "skips without a reason after the id: " + ", ".join(weak))
        # Skips in the Bicep that apply to nothing are noise: every skip comment must be used.
        used = {(c["file_path"].lstrip("/"), c["check_id"]) for c in skipped}
        unused = []
        for path in bicep_files:
            name = str(path.relative_to(bicep_dir))
            for m in re.finditer(r"checkov:skip=([A-Z0-9_]+)", path.read_text()):
                if (name, m.group(1)) not in used:
                    unused.append(f"{name}: {m.group(1)}")
        expect(not unused, "skip comments that suppress nothing: " + ", ".join(unused))
        return f"{len(skipped)} skips, each with its reason"


    # -- Bicep structure --------------------------------------------------------------------
    parsed: dict[Path, dict] = {}
    for path in bicep_files:
        def parse_one(path: Path = path) -> None:
            parsed[path] = parse_bicep(path)
        r.check(f"bicep parses: {rel(repo, path)}", parse_one)

    r.check("checkov: no failed checks", checkov_no_failures)
    r.check("checkov: every Bicep file parsed", checkov_parsed_everything)
    r.check("checkov: every skip is justified and used", checkov_skips_justified)

    def references_exist() -> str:
        missing = []
        for path in bicep_files:
            text = strip_comments(path.read_text())
            for m in re.finditer(r"^\s*module\s+\w+\s+'([^']+)'", text, re.M):
                if not (path.parent / m.group(1)).is_file():
                    missing.append(f"{rel(repo, path)}: module {m.group(1)}")
            for m in re.finditer(r"loadTextContent\('([^']+)'", text):
                if not (path.parent / m.group(1)).is_file():
                    missing.append(f"{rel(repo, path)}: loadTextContent {m.group(1)}")
        expect(not missing, "; ".join(missing))
        return None

    r.check("bicep: module and loadTextContent paths exist", references_exist)

    main_bicep = bicep_dir / "main.bicep"

    def main_params() -> tuple[set[str], set[str]]:
        text = strip_comments(main_bicep.read_text())
        declared, required = set(), set()
        for m in re.finditer(r"^param\s+(\w+)\s+\w+(\s*=)?", text, re.M):
            declared.add(m.group(1))
            if not m.group(2):
                required.add(m.group(1))
        return declared, required

    for pf in param_files:
        def param_file(pf: Path = pf) -> str:
            text = strip_comments(pf.read_text())
            expect(re.search(r"^using\s+'(\./)?main\.bicep'", text, re.M) is not None,
                   "does not start with using 'main.bicep'")
            declared, required = main_params()
            assigned = re.findall(r"^param\s+(\w+)\s*=", text, re.M)
            dupes = {p for p in assigned if assigned.count(p) > 1}
            expect(not dupes, f"parameters set twice: {sorted(dupes)}")
            unknown = set(assigned) - declared
            expect(not unknown, f"main.bicep declares no parameter {sorted(unknown)}")
            unset = required - set(assigned)
            expect(not unset, f"required parameters not set: {sorted(unset)}")
            env = re.search(r"^param\s+environmentName\s*=\s*'(\w+)'", text, re.M)
            expect(env is not None and env.group(1) == pf.stem, f"environmentName must be '{pf.stem}'")
            # Every environment variable it reads is one scripts/deploy knows and the README lists.
            deploy_text = (repo / "scripts" / "deploy").read_text()
            readme = (repo / "README.md").read_text() if (repo / "README.md").exists() else ""
            env_vars = set(re.findall(r"readEnvironmentVariable\('(\w+)'", text))
            undocumented = sorted(v for v in env_vars if v not in deploy_text or v not in readme)
            expect(not undocumented, f"environment variables not described in scripts/deploy and README.md: {undocumented}")
            return f"{len(assigned)} parameters, environment: {', '.join(sorted(env_vars))}"
        r.check(f"bicepparam: {pf.name} matches main.bicep", param_file)

    # -- Properties the issue requires that checkov has no check for -----------------------
    def module(name: str) -> dict:
        path = bicep_dir / "modules" / f"{name}.bicep"
        return parsed.get(path) or parse_bicep(path)

    def prop(tree: dict, symbol: str, dotted: str) -> object:
        res = (tree.get("resources") or {}).get(symbol)
        if res is None:
            raise Fail(f"no resource {symbol}")
        node = res.get("config") or {}
        if "condition" in node and "config" in node:
            node = node["config"]
        for part in dotted.split("."):
            if isinstance(node, list) and part.isdigit():
                node = node[int(part)] if int(part) < len(node) else None
            elif isinstance(node, dict):
                node = node.get(part)
            else:
                node = None
        return node

    def param_default(tree: dict, name: str) -> object:
        return ((tree.get("parameters") or {}).get(name) or {}).get("default")

    def required_properties() -> str:
        problems = []

        def want(tree: dict, symbol: str, dotted: str, value: object, why: str) -> None:
            got = prop(tree, symbol, dotted)
            if got != value:
                problems.append(f"{why}: {symbol}.{dotted} is {got!r}, expected {value!r}")

        archive = module("archiveStorage")
        want(archive, "account", "properties.allowBlobPublicAccess", False, "archive public access off")
        want(archive, "account", "properties.allowSharedKeyAccess", False, "archive shared keys off")
        want(archive, "account", "properties.publicNetworkAccess", "Disabled", "archive private only")
        want(archive, "account", "properties.immutableStorageWithVersioning.enabled", True, "archive immutability")
        want(archive, "blobService", "properties.isVersioningEnabled", True, "archive versioning")
        want(archive, "container", "properties.publicAccess", "None", "archive container private")
        if param_default(archive, "coolAfterDays") != 30 or param_default(archive, "archiveAfterDays") != 180:
            problems.append("archive lifecycle: Cool after 30 days, Archive after 180")
        for tier, days in (("tierToCool", "coolAfterDays"), ("tierToArchive", "archiveAfterDays")):
            if prop(archive, "lifecycle", f"properties.policy.rules.0.definition.actions.baseBlob.{tier}.daysAfterModificationGreaterThan") != days:
                problems.append(f"archive lifecycle rule {tier} does not use {days}")
        host = module("hostStorage")
        want(host, "account", "properties.allowBlobPublicAccess", False, "host storage public access off")
        want(host, "account", "properties.publicNetworkAccess", "Disabled", "host storage private only")
        cosmos = module("cosmos")
        want(cosmos, "account", "properties.disableLocalAuth", True, "Cosmos DB local auth off")
        want(cosmos, "account", "properties.publicNetworkAccess", "Disabled", "Cosmos DB private only")
        want(cosmos, "account", "properties.backupPolicy.type", "Continuous", "Cosmos DB continuous backup")
        sb = module("serviceBus")
        want(sb, "namespace", "properties.disableLocalAuth", True, "Service Bus local auth off")
        for symbol in ("gdprRequests", "notificationsOutbound"):
            want(sb, symbol, "properties.deadLetteringOnMessageExpiration", True, "dead-lettering")
        for symbol in ("gdprRequests", "orderEvents", "notificationsOutbound"):
            want(sb, symbol, "properties.requiresDuplicateDetection", True, "duplicate detection")
        want(sb, "notificationsSubscription", "properties.deadLetteringOnMessageExpiration", True, "dead-lettering")
        kv = module("keyVault")
        want(kv, "vault", "properties.enableRbacAuthorization", True, "Key Vault RBAC mode")
        want(kv, "vault", "properties.publicNetworkAccess", "Disabled", "Key Vault private only")
        fa = module("functionApp")
        want(fa, "plan", "sku.tier", "ElasticPremium", "Elastic Premium plan")
        want(fa, "plan", "properties.reserved", True, "Linux plan")
        want(fa, "site", "properties.vnetRouteAllEnabled", True, "all outbound through the VNet")
        want(fa, "site", "properties.siteConfig.functionsRuntimeScaleMonitoringEnabled", True, "runtime scale monitoring")
        want(fa, "site", "properties.virtualNetworkSubnetId", "functionSubnetId", "VNet integration")
        want(fa, "site", "properties.httpsOnly", True, "HTTPS only")
        want(fa, "site", "properties.siteConfig.ipSecurityRestrictionsDefaultAction", "Deny", "no public inbound")
        for name, group in (("functionApp", "sites"), ("cosmos", "Sql"), ("keyVault", "vault"), ("archiveStorage", "blob")):
            text = (bicep_dir / "modules" / f"{name}.bicep").read_text()
            if f"groupId: '{group}'" not in text:
                problems.append(f"{name}.bicep has no private endpoint ({group})")
        expect(not problems, "; ".join(problems))
        return None

    r.check("bicep: properties checkov does not cover (archive WORM, private-only, local auth off, VNet)", required_properties)

    # -- Deployment order, secrets, API versions, cloud names (issue 18) ---------------------
    def tree() -> dict[Path, BicepFile]:
        return {f.path: f for f in bicep_tree(main_bicep.resolve())}

    def file_reads_secret(files: dict[Path, BicepFile], path: Path, seen: set | None = None) -> bool:
        seen = set() if seen is None else seen
        if path in seen or path not in files:
            return False
        seen.add(path)
        f = files[path]
        return bicep_reads_secret(f.nc) or any(file_reads_secret(files, f.module_file(m), seen) for m in f.modules())

    def declares(files: dict[Path, BicepFile], path: Path, types: tuple) -> bool:
        f = files.get(path)
        return f is not None and any(f.of_type(t) for t in types)

    def grants_to_passed_identity(files: dict[Path, BicepFile], path: Path) -> bool:
        """Declares role assignments for an identity handed in as a parameter (the app's), as
        opposed to one of the module's own resources (API Management's, handled inside it)."""
        f = files.get(path)
        return f is not None and any((d.prop("principalId") or "") in f.params for t in ROLE_TYPES for d in f.of_type(t))

    def roles_before_readers() -> str:
        files = tree()
        main = files[main_bicep.resolve()]
        mods = {m.symbol: m for m in main.modules()}
        role_mods = [s for s, m in mods.items() if grants_to_passed_identity(files, main.module_file(m))]
        wait_mods = [s for s, m in mods.items() if declares(files, main.module_file(m), (WAIT_TYPE,))]
        app_mods = [s for s, m in mods.items() if declares(files, main.module_file(m), ("Microsoft.Web/sites",))]
        readers = [s for s, m in mods.items() if file_reads_secret(files, main.module_file(m))]
        expect(bool(role_mods), "main.bicep has no module with role assignments")
        expect(bool(readers), "no module reads the function key or a Key Vault secret; update this check")
        problems, order = [], []
        for r_mod in role_mods:
            # The roles must not wait for the app: the principal comes from an identity made before it.
            late = sorted(set(app_mods) & main.ancestors(r_mod))
            if late:
                problems.append(f"{r_mod} (role assignments) runs after {', '.join(late)}: pass it the identity's principal id, not the app's")
        for reader in readers:
            before = main.ancestors(reader)
            for r_mod in role_mods:
                if r_mod not in before:
                    problems.append(f"{reader} reads the function key or a Key Vault secret but may run before {r_mod} (its role assignments)")
                    continue
                waits = [w for w in wait_mods if w in before and r_mod in main.ancestors(w)]
                if not waits:
                    problems.append(f"{reader} runs right after {r_mod} without a wait for the role assignments to take effect (rolePropagation)")
                else:
                    order.append(f"{r_mod} → {waits[0]} → {reader}")
        # Inside a module: what reads a Key Vault secret comes after the role assignments in that
        # module and after a wait that follows them.
        for path, f in files.items():
            if path == main.path:
                continue
            roles = [d.symbol for t in ROLE_TYPES for d in f.of_type(t)]
            waits = [d.symbol for d in f.decls.values() if not d.existing and (d.api_type == WAIT_TYPE or (
                d.kind == "module" and declares(files, f.module_file(d), (WAIT_TYPE,))))]
            for d in f.decls.values():
                if d.existing or not roles or not re.search(r"secretIdentifier\s*:|\.getSecret\(", d.body):
                    continue
                before = f.ancestors(d.symbol)
                missing = [r_ for r_ in roles if r_ not in before]
                if missing:
                    problems.append(f"{path.name}: {d.symbol} reads Key Vault before {', '.join(missing)}")
                elif not [w for w in waits if w in before and set(roles) <= f.ancestors(w)]:
                    problems.append(f"{path.name}: {d.symbol} reads Key Vault right after {', '.join(roles)} without a wait for them to take effect")
                else:
                    order.append(f"{path.name}: {' + '.join(roles)} → wait → {d.symbol}")
        expect(not problems, "; ".join(problems))
        return "; ".join(order)

    def secret_exists_for_role() -> str:
        files = tree()
        main = files[main_bicep.resolve()]
        module_of = {main.module_file(m): m.symbol for m in main.modules()}
        problems, fine = [], []
        for path, f in files.items():
            for t in ROLE_TYPES:
                for ra in f.of_type(t):
                    scope = ra.prop("scope")
                    target = f.decls.get(scope or "")
                    if target is None or target.api_type != SECRET_TYPE:
                        continue
                    where = f"{path.name}: {ra.symbol} on secret {target.symbol}"
                    if not target.existing:
                        if target.conditional and not ra.conditional:
                            problems.append(f"{where}, which is created only under a condition")
                        else:
                            fine.append(f"{ra.symbol} (same module)")
                        continue
                    name = target.prop("name")
                    makers = [(g, d) for g in files.values() for d in g.of_type(SECRET_TYPE) if d.prop("name") == name]
                    if not makers:
                        problems.append(f"{where} ({name}), which nothing in the deployment creates")
                        continue
                    for g, d in makers:
                        if not d.conditional:
                            ok = True
                        else:
                            # Created only when a value is passed: the module must otherwise read the
                            # existing secret in an output, so that a missing one fails it by name.
                            readers = [e.symbol for e in g.of_type(SECRET_TYPE, existing=True) if e.prop("name") == name]
                            ok = any(re.search(r"\b" + re.escape(e) + r"\.properties\.", out) for e in readers for out in g.outputs.values())
                            if not ok:
                                problems.append(f"{where} ({name}): {g.path.name} creates that secret only under a condition ({d.symbol}) "
                                                "and does not otherwise check that it exists; a deployment without the value fails at the role assignment")
                        user, maker = module_of.get(path), module_of.get(g.path)
                        if ok and user and maker and maker not in main.ancestors(user):
                            problems.append(f"{where}: module {user} may run before {maker}, which creates or checks the secret")
                        elif ok:
                            fine.append(f"{ra.symbol} after {maker or g.path.name} ({'created or checked' if d.conditional else 'created'})")
        expect(not problems, "; ".join(problems))
        return ", ".join(fine)

    def preview_api_versions() -> str:
        problems, previews = [], 0
        for path in bicep_files:
            lines = path.read_text().splitlines()
            for n, line in enumerate(lines):
                for m in re.finditer(r"'([A-Za-z]+\.[A-Za-z.]+/[\w/.]+)@(\d{4}-\d{2}-\d{2}(-preview)?)'", line):
                    if not m.group(3):
                        continue
                    previews += 1
                    comments = [line.split("//", 1)[1]] if "//" in line else []
                    k = n - 1
                    while k >= 0 and lines[k].strip().startswith("//"):
                        comments.insert(0, lines[k].strip()[2:])
                        k -= 1
                    text = " ".join(c.strip() for c in comments)
                    reason = re.search(r"preview API:\s*(.+)", text)
                    if not reason or len(reason.group(1).strip()) < 30:
                        problems.append(f"{rel(repo, path)}:{n + 1} {m.group(1)}@{m.group(2)} has no '// preview API: <why no GA version does>' above it")
        expect(not problems, "; ".join(problems))
        return f"{previews} preview versions, each with its reason"

    def dns_zones_per_cloud() -> str:
        f = BicepFile(bicep_dir / "modules" / "network.bicep")
        expect("zoneNames" in f.vars, "network.bicep has no var zoneNames")
        problems = []
        # Every zone name must come from environment(), directly or through variables.
        def uses_environment(body: str, seen: set) -> bool:
            if "environment()" in body:
                return True
            return any(v not in seen and uses_environment(f.vars[v], seen | {v}) for v in f.refs(body) if v in f.vars)
        entries = re.findall(r"^\s*(\w+)\s*:\s*(.+)$", f.vars["zoneNames"], re.M)
        for key, expr in entries:
            if not uses_environment(expr, set()):
                problems.append(f"zone {key} is not built from environment() (hard-coded for one cloud)")
        for cloud, facts in CLOUDS.items():
            try:
                got = BicepEval(f, {"name": cloud, "suffixes": facts["suffixes"]}).var("zoneNames")
            except Fail as err:
                problems.append(f"{cloud}: {err}")
                continue
            wrong = {k: v for k, v in (got or {}).items() if facts["zones"].get(k) != v}
            if wrong or set(got or {}) != set(facts["zones"]):
                problems.append(f"{cloud}: " + ", ".join(f"{k} is {v!r}, documented {facts['zones'].get(k)!r}" for k, v in wrong.items()))
        expect(not problems, "; ".join(problems))
        return f"{len(entries)} zones, right in {', '.join(CLOUDS)}"

    def vault_rebuildable() -> str:
        main_text = strip_comments(main_bicep.read_text())
        kv = BicepFile(bicep_dir / "modules" / "keyVault.bicep")
        problems = []
        if not re.search(r"keyVault:\s*'[^']*\$\{vaultSuffix\}'", main_text) or "keyVaultNameSalt" not in (BicepFile(main_bicep).vars.get("vaultSuffix") or ""):
            problems.append("the vault name does not depend on a name salt parameter (keyVaultNameSalt)")
        vault = (kv.of_type("Microsoft.KeyVault/vaults") or [None])[0]
        if vault is None or vault.prop("createMode") != "createMode" or "createMode" not in kv.params:
            problems.append("keyVault.bicep does not take createMode (recover) as a parameter")
        if not re.search(r"createMode:\s*keyVaultCreateMode", main_text):
            problems.append("main.bicep does not pass keyVaultCreateMode to the keyVault module")
        for pf in param_files:
            text = pf.read_text()
            for var in ("KEY_VAULT_NAME_SALT", "KEY_VAULT_CREATE_MODE"):
                if var not in text:
                    problems.append(f"{pf.name} does not read {var}")
        expect(not problems, "; ".join(problems))
        return None

    r.check("bicep order: no module reads the function key or a Key Vault secret before the role assignments it needs have taken effect", roles_before_readers)
    r.check("bicep: a role assignment on a Key Vault secret runs only once that secret exists (or the deployment stops earlier, by name)", secret_exists_for_role)
    r.check("bicep: GA API versions; a preview one only with a written reason", preview_api_versions)
    r.check("bicep: private DNS zone names come from environment() and are right in every cloud", dns_zones_per_cloud)
    r.check("bicep: a deleted vault does not block a rebuild (name salt, createMode recover)", vault_rebuildable)


    def cosmos_data_model() -> str:
        store_rs = repo / COSMOS_STORE_RS
        expect(store_rs.is_file(), f"{COSMOS_STORE_RS} not found")
        rust = store_rs.read_text()
        store_policy = rust_json_literal(rust, "data_indexing_policy")
        problems = []

        def policy(value: object) -> object:
            return store_policy if value == "store" else value

        def compare(where: str, have: dict) -> None:
            if set(have) != set(COSMOS_CONTAINERS):
                problems.append(f"{where} has containers {sorted(have)}, COSMOS_CONTAINERS {sorted(COSMOS_CONTAINERS)}")
            for name, want in COSMOS_CONTAINERS.items():
                want = dict(want, indexingPolicy=policy(want["indexingPolicy"]))
                for field, value in want.items():
                    got = (have.get(name) or {}).get(field, value)
                    if field == "indexingPolicy":
                        got = policy(got)
                    if got != value:
                        show = (lambda v: json.dumps(v, separators=(",", ":"))) if field == "indexingPolicy" else repr
                        source = " (data_indexing_policy() in mod.rs)" if value == store_policy and field == "indexingPolicy" else ""
                        problems.append(f"{where}: {name}.{field} is {show(got)}, expected {show(value)}{source}")

        # COSMOS_CONTAINERS is what the store creates itself when it has a key (emulators) ...
        compare(str(COSMOS_STORE_RS), rust_store_containers(rust))
        # ... and what cosmos.bicep must declare for the managed identity, which cannot create them.
        declared, problems_ids = bicep_containers()
        problems.extend(problems_ids)
        clash = sorted(set(HOST_COSMOS_CONTAINERS) & set(COSMOS_CONTAINERS))
        if clash:
            problems.append(f"{clash} is both a store container and a host container")
        compare("cosmos.bicep", {n: c for n, c in declared.items() if n not in HOST_COSMOS_CONTAINERS})
        # The host's own containers (the change feed's leases), allowed explicitly, each as the
        # extension would have created it; whether a trigger uses it is the trigger check's.
        host = []
        for name, want in HOST_COSMOS_CONTAINERS.items():
            if name not in declared:
                continue
            host.append(name)
            for field, value in want.items():
                if declared[name].get(field) != value:
                    problems.append(f"cosmos.bicep: host container {name}.{field} is {declared[name].get(field)!r}, expected {value!r}")
        expect(not problems, "; ".join(problems))
        return ", ".join(f"{n} [{', '.join(c['paths'])}]" for n, c in COSMOS_CONTAINERS.items()) + (
            f"; host: {', '.join(host)}" if host else "")

    def bicep_containers() -> tuple[dict[str, dict], list[str]]:
        declared, problems = {}, []
        for c in resources_of(module("cosmos"), "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers"):
            res = literal((c.get("properties") or {}).get("resource") or {})
            if res.get("id") != c.get("name"):
                problems.append(f"cosmos.bicep: container {c.get('name')} has resource id {res.get('id')!r}")
            key = res.get("partitionKey") or {}
            declared[c.get("name")] = {
                "paths": key.get("paths"), "kind": key.get("kind"), "version": key.get("version"),
                "defaultTtl": res.get("defaultTtl"), "indexingPolicy": res.get("indexingPolicy"),
            }
        return declared, problems

    def cosmos_data_role() -> str:
        access = module("access")
        variables = {k: v.get("value") for k, v in (access.get("variables") or {}).items() if isinstance(v.get("value"), str)}

        def resolve(value: object) -> object:
            if value == {"operator": {"type": "property_accessor", "operands": {"operand_1": "cosmos", "operand_2": "id"}}}:
                return "${cosmos.id}"  # scope: cosmos.id
            if not isinstance(value, str):
                return value
            return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), value)

        scopes = []
        for c in resources_of(access, "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments"):
            props = c.get("properties") or {}
            role = resolve(props.get("roleDefinitionId"))
            if props.get("principalId") != "principalId" or not isinstance(role, str):
                continue
            if role.endswith(f"/sqlRoleDefinitions/{COSMOS_DATA_CONTRIBUTOR}"):
                scopes.append(resolve(props.get("scope")))
        expect(bool(scopes), "access.bicep gives the app identity (principalId) no Cosmos DB Built-in Data Contributor "
                             f"({COSMOS_DATA_CONTRIBUTOR}) sqlRoleAssignment")
        good = [sc for sc in scopes if re.fullmatch(r"\$\{cosmos\.id\}(/dbs/\$\{cosmosDatabaseName\})?", str(sc))]
        expect(bool(good), f"the Data Contributor assignment's scope {scopes} is neither the account nor its database")
        return "on the database" if any("/dbs/" in sc for sc in good) else "on the account"

    r.check("bicep: Cosmos DB containers are the store's data model (shared/src/store/cosmos/mod.rs), plus the host's leases", cosmos_data_model)
    r.check("bicep: the app identity has Cosmos DB Built-in Data Contributor (data plane)", cosmos_data_role)

    # -- The functions (functions/*/function.json) -----------------------------------------
    function_jsons = sorted((repo / "functions").glob("*/function.json"))

    def bindings() -> list[tuple[str, dict]]:
        out = []
        for fj in function_jsons:
            for b in json.loads(fj.read_text()).get("bindings", []):
                out.append((fj.parent.name, b))
        return out

    def binding_connections() -> set[str]:
        return {str(b[k]) for _, b in bindings() for k in ("connection", "leaseConnection") if b.get(k)}

    def functions_by_name() -> dict[str, dict]:
        return {fj.parent.name: json.loads(fj.read_text()) for fj in function_jsons}

    # -- App settings -----------------------------------------------------------------------
    function_app_bicep = bicep_dir / "modules" / "functionApp.bicep"
    example = repo / "local.settings.example.json"

    def bicep_settings() -> list[str]:
        tree = parsed.get(function_app_bicep) or parse_bicep(function_app_bicep)
        var = (tree.get("variables") or {}).get("appSettings")
        expect(var is not None, "functionApp.bicep has no `var appSettings`")
        names = [d["name"] for d in collect_dicts(var.get("value")) if isinstance(d.get("name"), str) and "value" in d]
        expect(bool(names), "no { name: ..., value: ... } entries in appSettings")
        return names

    def app_settings_match() -> str:
        local = json.loads(example.read_text())["Values"]
        names = bicep_settings()
        dupes = sorted({n for n in names if names.count(n) > 1})
        expect(not dupes, f"set twice in Bicep: {dupes}")
        in_bicep = set(names)
        problems = []

        def connection_forms(key: str) -> set[str]:
            base = key.split("__", 1)[0]
            return {n for n in in_bicep if n == base or (n.startswith(base + "__") and n.split("__", 1)[1] in IDENTITY_PROPERTIES)}

        # Connections the function.json bindings name are the host's: their identity-based
        # settings may be in Bicep without a local key (the cosmosDBTrigger's, for one).
        local_connections = set(binding_connections())
        for key in local:
            if key in LOCAL_ONLY:
                if key in in_bicep:
                    problems.append(f"{key} is local-only but set in Azure")
                continue
            if key in in_bicep:
                if "__" in key:
                    local_connections.add(key.split("__", 1)[0])
                continue
            forms = connection_forms(key)
            if forms:
                local_connections.add(key.split("__", 1)[0])
                continue
            problems.append(f"{key} (local.settings.example.json) is missing from Bicep")
        ahead = sorted(AHEAD_OF_APP - set(local))
        for name in sorted(AHEAD_OF_APP - in_bicep):
            problems.append(f"{name} (AHEAD_OF_APP) is not set in Bicep")
        for name in sorted(in_bicep):
            if name in local or name in PLATFORM_KEYS or name.startswith(PLATFORM_PREFIXES) or name in AHEAD_OF_APP:
                continue
            base, _, prop = name.partition("__")
            if prop and base in local_connections and prop in IDENTITY_PROPERTIES:
                continue
            problems.append(f"{name} is in Bicep but neither in local.settings.example.json nor allow-listed")
        for name in LOCAL_ONLY - set(local):
            problems.append(f"allow-list names {name} local-only but local.settings.example.json has no such key")
        expect(not problems, "; ".join(problems))
        stale = sorted(AHEAD_OF_APP & set(local))
        return (f"{len(in_bicep)} in Bicep, {len(local)} local, {len(LOCAL_ONLY)} local-only"
                + (f", ahead of the app: {', '.join(ahead)}" if ahead else "")
                + (f"; now in local.settings.example.json, drop from AHEAD_OF_APP: {', '.join(stale)}" if stale else ""))

    def app_settings_values() -> str:
        text = function_app_bicep.read_text()
        problems = []
        for key, want in REQUIRED_VALUES.items():
            m = re.search(r"name:\s*'" + re.escape(key) + r"'\s*,\s*value:\s*'([^']*)'", text)
            if not m:
                problems.append(f"{key} is not set to a literal")
            elif m.group(1) != want:
                problems.append(f"{key} is '{m.group(1)}', expected '{want}'")
        m = re.search(r"name:\s*'GDPR_PSEUDONYM_KEY'\s*,\s*value:\s*'([^']*)'", text)
        if not m or not m.group(1).startswith("@Microsoft.KeyVault(SecretUri="):
            problems.append("GDPR_PSEUDONYM_KEY must be a Key Vault reference @Microsoft.KeyVault(SecretUri=...)")
        # The SDK prefers the region it is told; the account lives in the deployment's location.
        if not re.search(r"name:\s*'COSMOS_REGION'\s*,\s*value:\s*location\s*\}", text):
            problems.append("COSMOS_REGION must be the deployment location (value: location)")
        expect(not problems, "; ".join(problems))
        return None

    def example_matches_config() -> str:
        config_rs = repo / "shared" / "src" / "config.rs"
        expect(config_rs.is_file(), "shared/src/config.rs not found")
        # config.rs and its submodules (shared/src/config/*.rs: the shipping carrier's settings).
        parts = [config_rs] + sorted((repo / "shared" / "src" / "config").glob("*.rs"))
        text = "\n".join(part.read_text().split("#[cfg(test)]", 1)[0] for part in parts)
        read = set(re.findall(r"\b(?:reader|self|self\.source)\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
        expect(len(read) > 10, f"found only {sorted(read)} in config.rs; update this check to how it reads settings")
        local = set(json.loads(example.read_text())["Values"])
        problems = []
        unlisted = sorted(read - SET_BY_HOST - local)
        if unlisted:
            problems.append(f"config.rs reads {unlisted}, not in local.settings.example.json")
        unread = sorted(local - NOT_READ_BY_CONFIG - read)
        if unread:
            problems.append(f"local.settings.example.json lists {unread}, which config.rs does not read")
        expect(not problems, "; ".join(problems))
        return f"{len(read - SET_BY_HOST)} settings"

    r.check("app settings: local.settings.example.json lists exactly what shared/src/config.rs reads", example_matches_config)
    r.check("app settings: Bicep matches local.settings.example.json", app_settings_match)
    r.check("app settings: Azure values (custom runtime, cosmos, blob, json logs, Key Vault reference, Cosmos region)", app_settings_values)

    # -- Functions <-> infrastructure ------------------------------------------------------
    def cosmos_triggers_match() -> str:
        functions = functions_by_name()
        settings = bicep_app_settings(function_app_bicep.read_text())
        containers, _ = bicep_containers()
        database = re.search(r"^var\s+cosmosDatabaseName\s*=\s*'([^']*)'", main_bicep.read_text(), re.M)
        expect(database is not None, "main.bicep has no `var cosmosDatabaseName = '...'`")
        problems, notes = cosmos_trigger_problems(functions, settings, containers, database.group(1))
        if OUTBOX_RELAY["function"] in functions and not notes:
            problems.append(f"{OUTBOX_RELAY['function']} has no cosmosDBTrigger")
        expect(not problems, "; ".join(problems))
        return "; ".join(notes) or "no Cosmos DB triggers"

    def service_bus_matches() -> str:
        sb = parsed.get(bicep_dir / "modules" / "serviceBus.bicep") or parse_bicep(bicep_dir / "modules" / "serviceBus.bicep")
        queues = {c["name"] for c in resources_of(sb, "Microsoft.ServiceBus/namespaces/queues")}
        topics = {c["name"] for c in resources_of(sb, "Microsoft.ServiceBus/namespaces/topics")}
        sb_file = BicepFile(bicep_dir / "modules" / "serviceBus.bicep")
        subs = {p for s, p in entity_paths(sb_file).items() if len(p) == 2 and not sb_file.decls[s].existing}
        used_q, used_t, used_s, connections = set(), set(), set(), set()
        sent, received = set(), set()  # entities the app sends to; (topic, subscription) or queue it receives from
        for fn, b in bindings():
            if not str(b.get("type", "")).startswith("serviceBus"):
                continue
            connections.add(b.get("connection"))
            if "queueName" in b:
                used_q.add(b["queueName"])
            if "topicName" in b:
                used_t.add(b["topicName"])
            if "subscriptionName" in b:
                used_s.add((b.get("topicName"), b["subscriptionName"]))
            entity = b.get("queueName") or b.get("topicName")
            if b.get("direction") == "out":
                sent.add(entity)
            else:
                received.add((entity, b.get("subscriptionName")))
        # The outbox relay sends without bindings: its destinations and connection count as used.
        relay = OUTBOX_RELAY["function"] in functions_by_name()
        if relay:
            used_q |= OUTBOX_RELAY["queues"]
            used_t |= OUTBOX_RELAY["topics"]
            sent |= OUTBOX_RELAY["queues"] | OUTBOX_RELAY["topics"]
            connections.add(OUTBOX_RELAY["connection"])
        expect(bool(connections), "no Service Bus bindings (or outbox relay) found in functions/*/function.json")
        problems = []
        # Subscriptions provisioned ahead of their functions: their roles are checked as if bound.
        ahead = sorted(AHEAD_OF_FUNCTIONS - used_s)
        bound_now = sorted(AHEAD_OF_FUNCTIONS & used_s)
        used_s |= AHEAD_OF_FUNCTIONS
        received |= AHEAD_OF_FUNCTIONS
        for kind, have, used in (("queue", queues, used_q), ("topic", topics, used_t), ("subscription", subs, used_s)):
            show = (lambda xs: sorted("/".join(x) if isinstance(x, tuple) else x for x in xs))
            if used - have:
                problems.append(f"{kind}s used by functions (or AHEAD_OF_FUNCTIONS) but not in serviceBus.bicep: {show(used - have)}")
            if have - used:
                problems.append(f"{kind}s in serviceBus.bicep no function uses: {show(have - used)}")
        settings = set(bicep_settings())
        for conn in sorted(c for c in connections if c):
            if f"{conn}__fullyQualifiedNamespace" not in settings:
                problems.append(f"connection {conn} has no {conn}__fullyQualifiedNamespace setting in Bicep")
        # The app identity's roles in access.bicep: Data Sender (or Owner) on what it sends to, Data
        # Receiver (or Owner) on what triggers it, on the entity or a parent (namespace, topic).
        grants = service_bus_grants()
        for entity in sorted(e for e in sent if e):
            if not grants.get((entity,), set()) & {SB_SENDER, SB_OWNER} and not grants.get((), set()) & {SB_SENDER, SB_OWNER}:
                problems.append(f"access.bicep gives the app identity no Azure Service Bus Data Sender on {entity}")
        for topic_or_queue, sub in sorted((e, s or "") for e, s in received if e):
            paths = [(), (topic_or_queue,)] + ([(topic_or_queue, sub)] if sub else [])
            if not any(grants.get(path, set()) & {SB_RECEIVER, SB_OWNER} for path in paths):
                problems.append(f"access.bicep gives the app identity no Azure Service Bus Data Receiver on {'/'.join(x for x in (topic_or_queue, sub) if x)}")
        # The relay's resends are dropped by Service Bus only within the duplicate detection
        # window; it must at least outlast one retry interval of the relay.
        if relay:
            sb_vars = {k: (v or {}).get("value") for k, v in (sb.get("variables") or {}).items()}
            retry = functions_by_name()[OUTBOX_RELAY["function"]].get("retry") or {}
            try:
                longest = timespan_seconds(retry.get("maximumInterval") or retry.get("delayInterval") or "00:00:00")
            except ValueError as err:
                longest = 0.0
                problems.append(f"{OUTBOX_RELAY['function']}: retry interval: {err}")
            kinds = {"Microsoft.ServiceBus/namespaces/queues": OUTBOX_RELAY["queues"], "Microsoft.ServiceBus/namespaces/topics": OUTBOX_RELAY["topics"]}
            for rtype, names in kinds.items():
                for c in resources_of(sb, rtype):
                    if c.get("name") not in names:
                        continue
                    props = c.get("properties") or {}
                    window = props.get("duplicateDetectionHistoryTimeWindow")
                    window = sb_vars.get(window, window)
                    if props.get("requiresDuplicateDetection") is not True:
                        problems.append(f"{c['name']}: the outbox relay sends to it, but requiresDuplicateDetection is not true")
                        continue
                    try:
                        seconds = iso_duration_seconds(str(window))
                    except ValueError as err:
                        problems.append(f"{c['name']}: duplicateDetectionHistoryTimeWindow: {err}")
                        continue
                    if seconds < longest:
                        problems.append(f"{c['name']}: duplicate detection window {window} is shorter than the relay's retry interval "
                                        f"({retry.get('maximumInterval')}): a retried send would be a duplicate")
        expect(not problems, "; ".join(problems))
        return (f"queues {sorted(queues)}, topics {sorted(topics)}, subscriptions {sorted('/'.join(s) for s in subs)}"
                + (f"; the outbox relay sends to {sorted(OUTBOX_RELAY['queues'] | OUTBOX_RELAY['topics'])}" if relay else "")
                + (f"; ahead of their functions: {', '.join('/'.join(s) for s in ahead)}" if ahead else "")
                + (f"; now bound, drop from AHEAD_OF_FUNCTIONS: {', '.join('/'.join(s) for s in bound_now)}" if bound_now else ""))

    def service_bus_grants() -> dict[tuple, set[str]]:
        """access.bicep's unconditional role assignments to the app identity on Service Bus, by
        entity path: () the namespace, (queue or topic,), (topic, subscription)."""
        f = BicepFile(bicep_dir / "modules" / "access.bicep")
        roles_var = ((module("access").get("variables") or {}).get("roles") or {}).get("value") or {}
        paths: dict[str, tuple] = {}

        def path_of(symbol: str) -> tuple | None:
            if symbol in paths:
                return paths[symbol]
            d = f.decls.get(symbol)
            if d is None or d.kind != "resource":
                return None
            if d.api_type == "Microsoft.ServiceBus/namespaces":
                paths[symbol] = ()
                return ()
            name = re.fullmatch(r"'([^']*)'", d.prop("name") or "")
            parent = path_of(d.prop("parent") or "")
            if name is None or parent is None:
                return None
            paths[symbol] = parent + (name.group(1),)
            return paths[symbol]

        grants: dict[tuple, set[str]] = {}
        for ra in f.of_type("Microsoft.Authorization/roleAssignments"):
            role = re.search(r"roles\.(\w+)", ra.prop("roleDefinitionId") or "")
            path = path_of(ra.prop("scope") or "")
            if ra.conditional or role is None or path is None or ra.prop("principalId") != "principalId":
                continue
            grants.setdefault(path, set()).add(roles_var.get(role.group(1)))
        return grants

    def host_json_matches() -> str:
        host = json.loads((repo / "host.json").read_text())
        problems = []
        desc = host.get("customHandler", {}).get("description", {})
        if desc.get("defaultExecutablePath") != "handler":
            problems.append("host.json defaultExecutablePath is not 'handler'")
        prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
        apim = (bicep_dir / "modules" / "apim.bicep").read_text()
        if f"defaultHostName}}/{prefix}'" not in apim:
            problems.append(f"the APIM backend URL does not end in /{prefix} (host.json routePrefix)")
        health = re.search(r"param healthCheckPath string = '([^']*)'", main_bicep.read_text())
        health_fn = repo / "functions" / "Health" / "function.json"
        if not health:
            problems.append("main.bicep has no `param healthCheckPath string = '...'`")
        if not health_fn.is_file():
            problems.append("functions/Health/function.json not found")
        if health and health_fn.is_file():
            route = next((b.get("route", "") for b in json.loads(health_fn.read_text())["bindings"] if b.get("type") == "httpTrigger"), "")
            pattern = "^/" + re.escape(prefix) + "/" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(route)) + "$"
            if not re.match(pattern, health.group(1)):
                problems.append(f"healthCheckPath {health.group(1)} does not match the Health route /{prefix}/{route}")
        expect(not problems, "; ".join(problems))
        return None

    r.check("functions: Service Bus entities, connection and roles match the Bicep (bindings and the outbox relay)", service_bus_matches)
    r.check("functions: Cosmos DB triggers match the Bicep (identity connection, containers, lease container /id, not created, retry -1)", cosmos_triggers_match)
    r.check("functions: host.json route prefix and Health route match the Bicep", host_json_matches)

    # -- APIM policies ----------------------------------------------------------------------
    xml_docs: dict[Path, ET.Element] = {}
    for pf in policy_files:
        def well_formed(pf: Path = pf) -> str:
            try:
                root = ET.parse(pf).getroot()
            except ET.ParseError as err:
                raise Fail(f"not well-formed XML: {err}") from None
            xml_docs[pf] = root
            if root.tag == "policies":
                problems = []
                names = [child.tag for child in root]
                for section in POLICY_SECTIONS:
                    nodes = root.findall(section)
                    if len(nodes) != 1:
                        problems.append(f"needs exactly one <{section}>, has {len(nodes)}")
                        continue
                    bases = nodes[0].findall("base")
                    if section == "inbound" and not bases and rel(repo, pf) == JWT_EXEMPT_OPERATION["policy"]:
                        pass  # on purpose: no token on the webhook (the JWT exemption check covers it)
                    elif len(bases) != 1:
                        problems.append(f"<{section}> needs one <base />, has {len(bases)}")
                    if any(el.tag == "base" for el in nodes[0].iter() if el not in list(nodes[0])):
                        problems.append(f"<{section}> has a nested <base />")
                extra = set(names) - set(POLICY_SECTIONS)
                if extra:
                    problems.append(f"unexpected top-level elements {sorted(extra)}")
                expect(not problems, "; ".join(problems))
                return "policy: <base /> in " + ", ".join(POLICY_SECTIONS)
            expect(root.tag == "fragment", f"root is <{root.tag}>, expected <policies> or <fragment>")
            expect(root.find(".//base") is None, "a fragment cannot contain <base />")
            bad = [s for s in POLICY_SECTIONS if root.find(s) is not None]
            expect(not bad, f"a fragment cannot contain sections {bad}")
            return "fragment"
        r.check(f"policy: {rel(repo, pf)}", well_formed)

    apim_bicep = bicep_dir / "modules" / "apim.bicep"

    def apim_definitions() -> tuple[dict, set, set, set]:
        tree = parsed.get(apim_bicep) or parse_bicep(apim_bicep)
        named = {}
        for c in resources_of(tree, "Microsoft.ApiManagement/service/namedValues"):
            props = c.get("properties", {})
            named[props.get("displayName")] = props
            if props.get("displayName") != c.get("name"):
                raise Fail(f"named value {c.get('name')} has displayName {props.get('displayName')}; policies use the display name")
        fragments = {c["name"] for c in resources_of(tree, "Microsoft.ApiManagement/service/policyFragments")}
        backends = {c["name"] for c in resources_of(tree, "Microsoft.ApiManagement/service/backends")}
        loaded = set()
        for path in bicep_files:
            for m in re.finditer(r"loadTextContent\('([^']+\.xml)'", strip_comments(path.read_text())):
                loaded.add((path.parent / m.group(1)).resolve())
        return named, fragments, backends, loaded

    def policies_wired() -> str:
        named, fragments, backends, loaded = apim_definitions()
        problems = []
        for pf in policy_files:
            if pf.resolve() not in loaded:
                problems.append(f"{rel(repo, pf)} is not loaded by any Bicep file")
            text = pf.read_text()
            for nv in re.findall(r"\{\{([^{}]+)\}\}", text):
                if nv not in named:
                    problems.append(f"{rel(repo, pf)} uses named value {nv}, which apim.bicep does not define")
            for fid in re.findall(r'fragment-id="([^"]+)"', text):
                if fid not in fragments:
                    problems.append(f"{rel(repo, pf)} includes fragment {fid}, which apim.bicep does not define")
            for bid in re.findall(r'backend-id="([^"]+)"', text):
                if bid not in backends:
                    problems.append(f"{rel(repo, pf)} uses backend {bid}, which apim.bicep does not define")
        for frag in fragments:
            if not (policies_dir / "fragments" / f"{frag}.xml").exists():
                problems.append(f"fragment {frag} has no apim-policies/fragments/{frag}.xml")
        key = named.get("function-app-key", {})
        if not (key.get("secret") is True and "keyVault" in key):
            problems.append("named value function-app-key must be a Key Vault-backed secret")
        expect(not problems, "; ".join(problems))
        return f"{len(named)} named values, {len(fragments)} fragments, {len(backends)} backend"

    def placeholders_render() -> str:
        text = strip_comments(apim_bicep.read_text())
        count = 0
        for m in re.finditer(r"replace\(loadTextContent\('([^']+)'\),\s*'((?:[^'\\]|\\')*)'", text):
            target = (apim_bicep.parent / m.group(1)).resolve()
            placeholder = m.group(2).replace("\\'", "'")
            source = target.read_text()
            expect(placeholder in source, f"{rel(repo, target)} has no {placeholder!r} for apim.bicep to replace")
            sample = {"origin": "<origin>https://app.example.test</origin><origin>https://admin.example.test</origin>",
                      "address-range": '<address-range from="203.0.113.10" to="203.0.113.10" /><address-range from="198.51.100.0" to="198.51.100.255" />'}
            kind = "origin" if "origin" in placeholder else "address-range"
            rendered = source.replace(placeholder, sample[kind])
            try:
                ET.fromstring(rendered)
            except ET.ParseError as err:
                raise Fail(f"{rel(repo, target)} is not well-formed once rendered: {err}") from None
            count += 1
        expect(count == 2, f"expected 2 placeholder replacements in apim.bicep, found {count}")
        return None

    def required_policies() -> str:
        ext = policies_dir / "external" / "api.xml"
        internal = policies_dir / "internal" / "api.xml"
        problems = []
        for name, path, calls in (("external", ext, "1000"), ("internal", internal, "5000")):
            root = xml_docs.get(path)
            if root is None:
                problems.append(f"{name}: {rel(repo, path)} missing or not parsed")
                continue
            inbound = root.find("inbound")
            jwt = inbound.find("validate-jwt") if inbound is not None else None
            if jwt is None or jwt.find("openid-config") is None:
                problems.append(f"{name}: no validate-jwt with openid-config in <inbound>")
            rl = inbound.find("rate-limit-by-key") if inbound is not None else None
            if rl is None or rl.get("calls") != calls or rl.get("renewal-period") != "60":
                problems.append(f"{name}: needs rate-limit-by-key {calls} calls per 60 s")
            elif "jwt" not in (rl.get("counter-key") or ""):
                problems.append(f"{name}: rate limit is not keyed on the caller's token")
            included = [el.get("fragment-id") for el in inbound.iter("include-fragment")] if inbound is not None else []
            for frag in ("strip-identity-headers", "correlation-id", "forward-to-function-app"):
                if frag not in included:
                    problems.append(f"{name}: <inbound> does not include {frag}")
            if included and included[-1] != "forward-to-function-app":
                problems.append(f"{name}: forward-to-function-app must be the last fragment of <inbound>")
            if included[:2] != ["strip-identity-headers", "correlation-id"]:
                problems.append(f"{name}: strip-identity-headers and correlation-id must come first")
            on_error = root.find("on-error")
            if on_error is None or "problem-response" not in [el.get("fragment-id") for el in on_error.iter("include-fragment")]:
                problems.append(f"{name}: <on-error> does not include problem-response")
        ext_root = xml_docs.get(ext)
        if ext_root is not None and ext_root.find("inbound/cors/allowed-origins/origin") is None:
            problems.append("external: no CORS allowed-origins")
        int_root = xml_docs.get(internal)
        if int_root is not None:
            admin_whens = [w for w in int_root.findall("inbound/choose/when") if w.find("ip-filter") is not None]
            if not any(w.find("ip-filter").get("action") == "allow" and "(^|/)admin(/|$)" in (w.get("condition") or "") for w in admin_whens):
                problems.append("internal: /admin routes need an ip-filter action=allow inside a choose on the admin path")
            # Employees without a known app role are refused at the gateway (403), before the handler.
            role_whens = [w for w in int_root.findall("inbound/choose/when")
                          if w.find("return-response/set-status") is not None
                          and w.find("return-response/set-status").get("code") == "403"]
            roles_named = any(all(f'"{role}"' in (w.get("condition") or "") for role in ("admin", "customer-service", "order-manager"))
                              and '"roles"' in (w.get("condition") or "") for w in role_whens)
            if not roles_named:
                problems.append("internal: tokens without one of the app roles (admin, customer-service, order-manager) must get 403 at the gateway")
        for path, root in xml_docs.items():
            for el in root.iter("set-status"):
                if not el.get("code") or not el.get("reason"):
                    problems.append(f"{rel(repo, path)}: set-status needs both code and reason")
        problem = xml_docs.get(policies_dir / "fragments" / "problem-response.xml")
        if problem is None or "application/problem+json" not in ET.tostring(problem, encoding="unicode"):
            problems.append("problem-response does not answer application/problem+json")
        strip = xml_docs.get(policies_dir / "fragments" / "strip-identity-headers.xml")
        removed = {el.get("name", "").lower() for el in strip.iter("set-header") if el.get("exists-action") == "delete"} if strip is not None else set()
        for header in ("x-ms-client-principal", "x-ms-client-principal-id", "x-tenant-id", "x-functions-key", SIGNALR_USER_HEADER):
            if header not in removed:
                problems.append(f"strip-identity-headers does not delete {header}")
        for api in ("external", "internal"):
            problems.extend(signalr_user_header_problems(xml_docs.get(policies_dir / api / "api.xml"), f"{api}/api.xml"))
        expect(not problems, "; ".join(problems))
        return None

    def openapi_ok() -> str:
        expect(openapi.is_file(), "apim-policies/openapi.json is missing; regenerate it: handler openapi --write apim-policies/openapi.json")
        text = openapi.read_text()
        expect(len(text) <= LOAD_TEXT_LIMIT, f"{len(text)} characters; loadTextContent takes at most {LOAD_TEXT_LIMIT}")
        try:
            doc = json.loads(text)
        except ValueError as err:
            raise Fail(f"not valid JSON: {err}") from None
        expect(str(doc.get("openapi", "")).startswith("3."), f"openapi version is {doc.get('openapi')!r}, expected 3.x")
        paths = doc.get("paths") or {}
        expect(bool(paths), "no paths")
        bad = [p for p in paths if not p.startswith("/") or p.startswith("/api/")]
        expect(not bad, f"paths must be relative to the /api route prefix (the backend URL adds it): {bad[:5]}")
        missing = []
        for fn, b in bindings():
            if b.get("type") == "httpTrigger" and b.get("authLevel") != "anonymous":
                prefix = "/" + b.get("route", "").split("{", 1)[0].rstrip("/")
                if not any(p.startswith(prefix) for p in paths):
                    missing.append(f"{fn} ({prefix})")
        expect(not missing, f"no paths for {missing}")
        expect(any(p.startswith("/health/") for p in paths), "no /health/{check} path (scripts/smoke calls /health/ready through API Management, which routes only the operations the document defines)")
        return f"{len(paths)} paths"

    r.check("policies: referenced from Bicep; named values, fragments, backends defined", policies_wired)
    r.check("policies: list placeholders replaced by apim.bicep render to well-formed XML", placeholders_render)
    r.check("policies: JWT, rate limits, CORS, admin IP filter, header stripping, correlation, problem documents", required_policies)
    r.check("openapi.json: OpenAPI 3, relative paths, fits loadTextContent", openapi_ok)

    # -- Payments (PayPal) ------------------------------------------------------------------
    def payments_messaging() -> str:
        problems = payment_messaging_problems(BicepFile(bicep_dir / "modules" / "serviceBus.bicep"),
                                              BicepFile(bicep_dir / "modules" / "access.bicep"))
        expect(not problems, "; ".join(problems))
        return f"{PAYMENT_TOPIC} (duplicate detection as order-events), " + ", ".join("/".join(s) for s in sorted(PAYMENT_SUBSCRIPTIONS))

    def payments_secrets() -> str:
        settings = bicep_app_settings(function_app_bicep.read_text())
        params = {pf.name: pf.read_text() for pf in param_files}
        problems = secret_settings_problems(settings) + secret_param_problems(main_bicep.read_text(), params) \
            + paypal_base_url_problems(params)
        expect(not problems, "; ".join(problems))
        return ", ".join(SECRET_SETTINGS)

    def payments_jwt_exemption() -> str:
        policies = {rel(repo, path): root for path, root in xml_docs.items()}
        problems, notes = jwt_exemption_problems(BicepFile(apim_bicep), policies)
        expect(not problems, "; ".join(problems))
        return "; ".join(notes)

    def payments_operations_not_in_openapi() -> str:
        declared = bicep_operations(BicepFile(apim_bicep))
        expect(bool(declared), "apim.bicep declares no operations (the payments routes and the webhook)")
        doc = json.loads(openapi.read_text()) if openapi.is_file() else {}

        def shape(url: str) -> str:
            return re.sub(r"\{[^}]*\}", "{}", url)

        imported = {(m.upper(), shape(p)): (op or {}).get("operationId") for p, ops in (doc.get("paths") or {}).items()
                    for m, op in ops.items() if m.lower() in ("get", "put", "post", "delete", "patch", "head", "options")}
        names = bicep_operation_names(BicepFile(apim_bicep))
        both = sorted(f"{m} {u}" for m, u in declared
                      if (m, shape(u)) in imported and names.get((m, u)) != imported[(m, shape(u))])
        expect(not both, f"apim-policies/openapi.json now defines {both}, which apim.bicep declares too under another name: "
                         "API Management refuses the same method and URL template twice; remove them from apim.bicep, or name "
                         "the declaration as the imported operation's operationId (to attach a policy to it)")
        return f"{len(declared)} operations declared in Bicep"

    def payments_nat_gateway() -> str:
        problems = nat_gateway_problems(BicepFile(bicep_dir / "modules" / "network.bicep"), function_app_bicep.read_text(),
                                        BicepFile(main_bicep))
        expect(not problems, "; ".join(problems))
        return None

    r.check("payments: payment-events with duplicate detection, its subscriptions and order-events/payments, send/receive roles", payments_messaging)
    r.check("payments: secret app settings are Key Vault references, secret parameters @secure() without values, PayPal URL per environment", payments_secrets)
    r.check("payments: the provider webhook is the only gateway route without validate-jwt (raw body, PAYPAL-* headers, rate limit)", payments_jwt_exemption)
    r.check("payments: operations declared in apim.bicep are not also in openapi.json", payments_operations_not_in_openapi)
    r.check("payments: NAT gateway with a static public IP on the function app's integration subnet, all traffic routed, IP output", payments_nat_gateway)

    # -- Package layout ---------------------------------------------------------------------
    package_script = repo / "scripts" / "package"

    def package_layout() -> str:
        expect(bool(function_jsons), "no functions/*/function.json in the repository")
        dummy = work / "dummy-handler"
        dummy.write_text("#!/bin/sh\necho dummy handler\n")
        dummy.chmod(0o644)  # the package must set the bit even when the file lacks it
        out = work / "package" / "functionapp.zip"
        proc = subprocess.run([str(package_script), "--binary", str(dummy), "--out", str(out)],
                              capture_output=True, text=True, cwd=work)
        expect(proc.returncode == 0, f"scripts/package failed: {proc.stderr.strip()}")
        expect(proc.stdout.strip() == str(out), f"scripts/package printed {proc.stdout.strip()!r}, expected the zip path")
        host = json.loads((repo / "host.json").read_text())
        exe = host["customHandler"]["description"]["defaultExecutablePath"]
        problems = []
        with zipfile.ZipFile(out) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if zf.read("host.json") != (repo / "host.json").read_bytes():
                problems.append("host.json differs from the repository's")
            info = infos.get(exe)
            if info is None:
                problems.append(f"no {exe} at the zip root")
            else:
                mode = info.external_attr >> 16
                if info.create_system != 3 or not stat.S_ISREG(mode) or mode & 0o111 != 0o111:
                    problems.append(f"{exe} is not a regular file with the executable bit (mode {oct(mode)})")
            expected_files = {"host.json", exe}
            names = set()
            for fj in function_jsons:
                name = fj.parent.name
                names.add(name)
                member = f"{name}/function.json"
                expected_files.add(member)
                if member not in infos:
                    problems.append(f"no {member}")
                    continue
                data = json.loads(zf.read(member))
                if data != json.loads(fj.read_text()):
                    problems.append(f"{member} differs from functions/{member}")
                kinds = [b.get("type", "") for b in data.get("bindings", [])]
                triggers = [k for k in kinds if k.endswith("Trigger")]
                if len(triggers) != 1:
                    problems.append(f"{member} has {len(triggers)} trigger bindings, expected 1")
                for b in data.get("bindings", []):
                    if not b.get("name") or b.get("direction") not in ("in", "out"):
                        problems.append(f"{member}: a binding without a name or direction")
            files = {n for n in infos if not n.endswith("/")}
            if files != expected_files:
                problems.append(f"unexpected entries {sorted(files - expected_files)}; missing {sorted(expected_files - files)}")
            unsafe = [n for n in infos if n.startswith("/") or ".." in n.split("/")]
            if unsafe:
                problems.append(f"unsafe paths {unsafe}")
        # The app's functions: the folders `handler functions write` generates from the registry
        # (functions/src/registry.rs); functions/tests/function_json.rs keeps them equal to it.
        expected = {fj.parent.name for fj in function_jsons}
        if names != expected:
            problems.append(f"functions differ from the app's: missing {sorted(expected - names)}, extra {sorted(names - expected)}")
        # The bit must survive extraction the way the worker sees it.
        extracted = work / "extracted"
        with zipfile.ZipFile(out) as zf:
            zf.extract(exe, extracted)
            os.chmod(extracted / exe, (zf.getinfo(exe).external_attr >> 16) & 0o777)
        try:
            ran = subprocess.run([str(extracted / exe)], capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError as err:
            ran = f"{type(err).__name__}: {err.strerror}"
        if ran != "dummy handler":
            problems.append(f"the extracted handler does not run ({ran})")
        expect(not problems, "; ".join(problems))
        return f"{len(names)} functions, {exe} mode 0755"

    def package_rejects_bad_input() -> str:
        bad_dir = work / "bad-functions" / "Broken"
        bad_dir.mkdir(parents=True, exist_ok=True)
        (bad_dir / "function.json").write_text("{ not json")
        dummy = work / "dummy-handler"
        proc = subprocess.run([str(package_script), "--binary", str(dummy), "--functions-dir", str(bad_dir.parent),
                               "--out", str(work / "bad.zip")], capture_output=True, text=True)
        expect(proc.returncode != 0, "scripts/package accepted an invalid function.json")
        lines = proc.stderr.strip().splitlines()
        expect(len(lines) == 1 and "Broken/function.json" in lines[0], f"expected one line naming the file, got {proc.stderr.strip()!r}")
        expect(not (work / "bad.zip").exists(), "a zip was written anyway")
        proc = subprocess.run([str(package_script), "--binary", str(work / "missing")], capture_output=True, text=True)
        expect(proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1 and "scripts/build" in proc.stderr,
               f"a missing binary should fail with one line pointing at scripts/build, got {proc.stderr.strip()!r}")
        return None

    r.check("package: zip layout, executable bit, one folder per function", package_layout)
    r.check("package: invalid function.json or missing binary fail with one line", package_rejects_bad_input)

    # -- Scripts ----------------------------------------------------------------------------
    scripts = ["build", "package", "deploy", "smoke", "test-infra"]
    # Scripts that take arguments through to a benchmark, or run for minutes: --help only (their
    # usage comes from scripts/lib/common.sh like the others'), never an unknown flag.
    help_only = ["test", "bench-api", "bench-erasure", "bench-retention", "conformance-table"]

    def scripts_basics() -> str:
        problems = []
        for name in scripts + help_only:
            path = repo / "scripts" / name
            if not path.exists():
                problems.append(f"{name} missing")
                continue
            text = path.read_text()
            if not os.access(path, os.X_OK):
                problems.append(f"{name} is not executable")
            if "set -euo pipefail" not in text:
                problems.append(f"{name} lacks set -euo pipefail")
            if subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode != 0:
                problems.append(f"{name} has a bash syntax error")
            proc = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=30)
            if proc.returncode != 0 or not proc.stdout.startswith("Usage: scripts/" + name):
                problems.append(f"{name} --help does not print its usage")
            if name in help_only:
                continue
            proc = subprocess.run([str(path), "--no-such-flag"], capture_output=True, text=True, timeout=30)
            if proc.returncode == 0 or len(proc.stderr.strip().splitlines()) != 1:
                problems.append(f"{name} --no-such-flag should fail with one line, got {proc.stderr.strip()!r}")
        if shutil.which("readelf"):
            proc = subprocess.run([str(repo / "scripts" / "build"), "--check", str(repo / "host.json")], capture_output=True, text=True)
            if proc.returncode == 0 or "not an x86-64 ELF" not in proc.stderr:
                problems.append(f"build --check should reject a non-ELF file, got {proc.stderr.strip()!r}")
        expect(not problems, "; ".join(problems))
        return None

    r.check("scripts: --help, set -euo pipefail, one-line errors", scripts_basics)

    # scripts/deploy against a stand-in az and curl (scripts/tests/test_deploy.py), and the rules
    # of this file that have unit tests (scripts/tests/test_infra_checks.py): one check per test.
    def deploy_tests() -> list:
        import importlib
        import unittest
        tests = []
        for name in ("test_deploy", "test_infra_checks"):
            if not (repo / "scripts" / "tests" / f"{name}.py").is_file():
                def missing(name: str = name) -> None:
                    raise Fail(f"scripts/tests/{name}.py is missing")
                tests.append(missing)
                continue
            sys.path.insert(0, str(repo / "scripts" / "tests"))
            try:
                module = importlib.import_module(name)
            finally:
                sys.path.pop(0)
            for case in unittest.defaultTestLoader.loadTestsFromModule(module):
                tests.extend(case)
        return tests

    def run_unittest(test) -> str:
        import unittest
        result = unittest.TestResult()
        unittest.TestSuite([test])(result)  # a suite runs the class's setUpClass/tearDownClass too
        problems = result.failures + result.errors
        expect(not problems, "\n".join(trace.strip().splitlines()[-1] + " (" + str(t) + ")\n" + trace for t, trace in problems))
        expect(result.testsRun == 1 and not result.skipped, "the test did not run")
        return None

    for test in deploy_tests():
        if not hasattr(test, "shortDescription"):
            r.check("scripts/tests: a test module is missing", test)
            continue
        doc = (test.shortDescription() or test.id()).strip()
        r.check(doc, lambda test=test: run_unittest(test))

    # -- GitLab CI/CD (.gitlab-ci.yml) --------------------------------------------------------
    gitlab_ci = repo / ".gitlab-ci.yml"
    ci_keywords = {"stages", "include", "variables", "default", "workflow", "image", "services", "cache",
                   "before_script", "after_script", "spec"}

    def ci_jobs() -> dict:
        import yaml  # PyYAML, in the venv (checkov needs it)
        expect(gitlab_ci.is_file(), ".gitlab-ci.yml is missing")
        doc = yaml.safe_load(gitlab_ci.read_text())
        expect(isinstance(doc, dict), ".gitlab-ci.yml is not a mapping")

        def merged(name: str, seen: tuple = ()) -> dict:
            job = doc.get(name)
            expect(isinstance(job, dict), f"job {name} is not a mapping")
            expect(name not in seen, f"extends loop at {name}")
            parents = job.get("extends") or []
            out: dict = {}
            for parent in [parents] if isinstance(parents, str) else parents:
                deep_merge(out, merged(parent, seen + (name,)))
            deep_merge(out, {k: v for k, v in job.items() if k != "extends"})
            return out

        def deep_merge(into: dict, more: dict) -> None:
            for k, v in more.items():
                if isinstance(v, dict) and isinstance(into.get(k), dict) and v:
                    deep_merge(into[k], v)
                else:
                    into[k] = v

        jobs = {name: merged(name) for name, job in doc.items()
                if isinstance(job, dict) and not name.startswith(".") and name not in ci_keywords}
        return {"doc": doc, "jobs": jobs}

    def flat(lines: object) -> list[str]:
        if isinstance(lines, str):
            return [lines]
        out = []
        for x in lines or []:
            out.extend(flat(x))
        return out

    def readme_test_command() -> str:
        readme = (repo / "README.md").read_text()
        m = re.search(r"^```[^\n]*\n(.*?)^```", readme, re.M | re.S)
        expect(m is not None, "README.md has no code block")
        lines = m.group(1).splitlines()
        expect(len(lines) >= 2, "the README's first code block has no second line")
        cmd = lines[1].split("#", 1)[0].strip()
        expect(bool(cmd), "the second line of the README's first code block is empty")
        return cmd

    def ci_schema() -> str:
        expect(gitlab_ci.is_file(), ".gitlab-ci.yml is missing")
        exe = Path(sys.executable).parent / "check-jsonschema"
        expect(exe.exists(), f"{exe} missing: check-jsonschema belongs in scripts/lib/requirements-infra.txt")
        proc = subprocess.run([str(exe), "--builtin-schema", "vendor.gitlab-ci", str(gitlab_ci)],
                              capture_output=True, text=True, timeout=120)
        expect(proc.returncode == 0, (proc.stdout + proc.stderr).strip()[-2000:])
        version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip()
        return f"vendor.gitlab-ci schema of {version}"

    def ci_test_job() -> str:
        cmd = readme_test_command()
        ci = ci_jobs()
        jobs = ci["jobs"]
        runs = {n: j for n, j in jobs.items() if any(cmd in line for line in flat(j.get("script")))}
        expect(len(runs) == 1, f"expected one job running {cmd!r} (the README's test command), found {sorted(runs)}")
        name, job = next(iter(runs.items()))
        expect(job.get("stage") in ("build", "test"), f"job {name} runs in stage {job.get('stage')!r}, not build or test")
        script = flat(job.get("script"))
        expect(script == [cmd], f"job {name} runs {script}, not exactly [{cmd!r}] (the README's test command)")
        caches = job.get("cache") or []
        caches = [caches] if isinstance(caches, dict) else caches
        paths = {p.rstrip("/") for c in caches for p in (c.get("paths") or [])}
        expect(any(p.startswith(".cargo") for p in paths) and "target" in paths, f"job {name} caches no cargo home and target/: {sorted(paths)}")
        expect(".tools" in paths, f"job {name} does not cache .tools/: {sorted(paths)}")
        return f"job {name}: {cmd}"

    def ci_pipeline() -> str:
        ci = ci_jobs()
        doc, jobs = ci["doc"], ci["jobs"]
        problems = []
        stages = doc.get("stages") or []
        wanted = ["build", "security", "deploy-dev", "integration", "deploy-staging", "e2e", "deploy-production"]
        positions = [stages.index(s) if s in stages else -1 for s in wanted]
        if -1 in positions or positions != sorted(positions):
            problems.append(f"stages {stages} do not contain {wanted} in that order")
        templates = {i.get("template") for i in (doc.get("include") or []) if isinstance(i, dict)}
        for t in ("Jobs/SAST.gitlab-ci.yml", "Jobs/Dependency-Scanning.gitlab-ci.yml"):
            if t not in templates:
                problems.append(f"does not include the {t} template")
        for name in ("sast", "dependency_scanning"):
            if (jobs.get(name) or {}).get("stage") != "security":
                problems.append(f"{name} does not run in the security stage")
        if not any(j.get("stage") == "security" and any("cargo-deny" in l and "check" in l for l in flat(j.get("script"))) for j in jobs.values()):
            problems.append("no security job runs cargo deny check")
        for stage in ("integration", "e2e"):
            if not any(j.get("stage") == stage for j in jobs.values()):
                problems.append(f"no job in the {stage} stage")
        for env, stage in (("dev", "deploy-dev"), ("staging", "deploy-staging"), ("prod", "deploy-production")):
            deploys = [(n, j) for n, j in jobs.items() if any(re.search(r"scripts/deploy\s.*--env\s+" + env + r"\b", l) for l in flat(j.get("script")))]
            if len(deploys) != 1:
                problems.append(f"expected one job running scripts/deploy --env {env}, found {[n for n, _ in deploys]}")
                continue
            name, job = deploys[0]
            script = flat(job.get("script"))
            both = flat(job.get("before_script")) + script
            if job.get("stage") != stage:
                problems.append(f"{name} runs in stage {job.get('stage')!r}, not {stage}")
            if not any("--yes" in l for l in script if "scripts/deploy" in l):
                problems.append(f"{name}: scripts/deploy without --yes would wait for a terminal")
            if not (bicep_dir / f"{env}.bicepparam").is_file():
                problems.append(f"{name}: infra/bicep/{env}.bicepparam is missing")
            deploy_at = next(i for i, l in enumerate(script) if "scripts/deploy" in l)
            if not any("scripts/smoke" in l for l in script[deploy_at + 1:]):
                problems.append(f"{name}: no scripts/smoke after the deployment")
            tokens = job.get("id_tokens") or {}
            token_vars = [k for k, v in tokens.items() if isinstance(v, dict) and v.get("aud")]
            if not token_vars:
                problems.append(f"{name}: no id_tokens with an aud (workload identity federation)")
            login = [l for l in both if re.search(r"\baz login\b", l)]
            if not login or not all("--federated-token" in l and any("$" + t in l or "${" + t + "}" in l for t in token_vars) for l in login):
                problems.append(f"{name}: no `az login --federated-token` with the job's ID token")
            if any(re.search(r"--password|-p\s|CLIENT_SECRET|--secret", l) for l in both):
                problems.append(f"{name}: signs in with a stored secret")
            env_name = (job.get("environment") or {}).get("name") if isinstance(job.get("environment"), dict) else job.get("environment")
            if not env_name:
                problems.append(f"{name}: no environment")
            if env == "prod":
                manual = job.get("when") == "manual" or any(r.get("when") == "manual" for r in job.get("rules") or [])
                if not manual:
                    problems.append(f"{name}: production must be when: manual")
                if job.get("allow_failure") is not False:
                    problems.append(f"{name}: a manual production job needs allow_failure: false, or the pipeline passes without it")
                if env_name != "production":
                    problems.append(f"{name}: environment is {env_name!r}, expected production (protected in GitLab)")
        expect(not problems, "; ".join(problems))
        return ", ".join(stages)

    r.check("gitlab-ci: .gitlab-ci.yml is valid against GitLab's CI schema (check-jsonschema, offline)", ci_schema)
    r.check("gitlab-ci: the test job runs exactly the README's test command, with cargo and .tools caches", ci_test_job)
    r.check("gitlab-ci: stages, security scans, one deploy job per environment (federated login, smoke after), production manual", ci_pipeline)

    def smoke_against(behaviour: str) -> subprocess.CompletedProcess:
        class Gateway(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                authed = self.headers.get("Authorization") == "Bearer good-token"
                if behaviour == "open" or authed:
                    if self.path.startswith("/api/health/ready"):
                        body, ctype, status = b'{"status":"ready","checks":{}}', "application/json", 200
                    else:
                        body, ctype, status = b'{"items":[]}', "application/json", 200
                else:
                    body, ctype, status = b'{"type":"about:blank","title":"Unauthorized","status":401}', "application/problem+json", 401
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if self.headers.get("x-correlation-id"):
                    self.send_header("x-correlation-id", self.headers["x-correlation-id"])
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            return subprocess.run([str(repo / "scripts" / "smoke"), "--url", f"http://127.0.0.1:{server.server_port}/api",
                                   "--token", "good-token", "--timeout", "5"], capture_output=True, text=True, timeout=60)
        finally:
            server.shutdown()

    def smoke_passes_and_fails() -> str:
        good = smoke_against("secure")
        expect(good.returncode == 0 and good.stdout.strip().endswith("smoke: 3 passed, 0 failed"),
               f"against a correct gateway: {good.stdout.strip()} {good.stderr.strip()}")
        bad = smoke_against("open")
        expect(bad.returncode != 0 and "smoke: 2 passed, 1 failed" in bad.stdout and "FAIL  no token" in bad.stdout,
               f"against a gateway that lets anonymous calls through: {bad.stdout.strip()}")
        return None

    r.check("smoke: passes against a correct gateway, fails against one without auth", smoke_passes_and_fails)

    print(f"infra: {r.passed} passed, {r.failed} failed")
    sys.exit(1 if r.failed else 0)


if __name__ == "__main__":
    main()
