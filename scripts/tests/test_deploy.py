"""Tests of scripts/deploy against a stand-in `az` (and `curl`) on the PATH: no Azure needed.

What they pin down: the GDPR pseudonymisation key is sent only when Azure says, without doubt,
that the vault has none (and then generated once, for the what-if and the deployment alike), or
with --rotate-gdpr-key; any other failure of that question stops the script before anything
changes. Also: the what-if runs first and nothing is applied without --yes or a confirmation; a
deleted vault is recovered; the zip deploy explains an unreachable SCM endpoint.

Run by scripts/test-infra (each test is one check line), or alone:
    python3 -m unittest discover -s scripts/tests -v
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

# The repository whose scripts/deploy is tested: this one, or DEPLOY_TEST_REPO (e.g. an older
# checkout, to show what these tests catch).
REPO = Path(os.environ.get("DEPLOY_TEST_REPO") or Path(__file__).resolve().parents[2])

FAKE_AZ = r'''#!/usr/bin/env bash
# A stand-in for the Azure CLI: records each call with a fingerprint of the GDPR key it would
# send (the deployment reads GDPR_PSEUDONYM_KEY from the environment) and answers what
# scripts/deploy asks, as the FAKE_* variables say.
key="-"
if [[ -n "${GDPR_PSEUDONYM_KEY:-}" ]]; then key="$(printf '%s' "$GDPR_PSEUDONYM_KEY" | sha256sum | cut -c1-16)"; fi
printf '%s | GDPR=%s KVMODE=%s\n' "$*" "$key" "${KEY_VAULT_CREATE_MODE:-}" >>"$AZ_LOG"
fail() { printf '%s\n' "$2" >&2; exit "$1"; }
case "$1 $2" in
  "account show") echo "test-subscription" ;;
  "group show") [[ "$*" == *missing-rg* ]] && fail 3 "(ResourceGroupNotFound) Resource group 'missing-rg' could not be found."; echo "rg-test" ;;
  "keyvault list")
    [[ -n "${FAKE_VAULT_LIST_ERROR:-}" ]] && fail 1 "$FAKE_VAULT_LIST_ERROR"
    [[ -n "${FAKE_VAULT_ID:-}" ]] && echo "$FAKE_VAULT_ID"; exit 0 ;;
  "keyvault list-deleted")
    [[ -n "${FAKE_DELETED_LIST_ERROR:-}" ]] && fail 1 "$FAKE_DELETED_LIST_ERROR"
    [[ -n "${FAKE_DELETED_VAULT:-}" ]] && echo "$FAKE_DELETED_VAULT"; exit 0 ;;
  "resource show")
    case "${FAKE_SECRET:-exists}" in
      exists) echo "${FAKE_VAULT_ID}/secrets/gdpr-pseudonym-key" ;;
      missing) fail 3 "(ResourceNotFound) The Resource 'Microsoft.KeyVault/vaults/kv-custplat-dev-abc123/secrets/gdpr-pseudonym-key' under resource group 'rg-test' was not found.
Code: ResourceNotFound" ;;
      *) fail "${FAKE_SECRET_RC:-1}" "$FAKE_SECRET" ;;
    esac ;;
  "deployment group")
    case "$3" in
      what-if) echo "Resource and property changes are indicated with these symbols:"; echo "Resource changes: 42 to create." ;;
      create) [[ -n "${FAKE_CREATE_FAILS:-}" ]] && fail 1 "(DeploymentFailed) boom"; exit 0 ;;
      show) printf '%s\n' "func-custplat-dev-abc123" "https://apim.example.test/internal/api" "https://apim.example.test/api" ;;
    esac ;;
  "functionapp list") echo "${FAKE_APPS:-func-custplat-dev-abc123}" ;;
  "functionapp show") echo "func-custplat-dev-abc123.scm.azurewebsites.net" ;;
  "functionapp deployment") ;;
  *) fail 2 "fake az: unexpected call: $*" ;;
esac
'''

FAKE_CURL = r'''#!/usr/bin/env bash
# A stand-in for curl: answers the SCM probe with FAKE_SCM_STATUS (000: no connection).
printf 'curl %s\n' "$*" >>"$AZ_LOG"
status="${FAKE_SCM_STATUS:-401}"
if [[ "$status" == 000 ]]; then echo "curl: (28) Connection timed out" >&2; printf '000'; exit 28; fi
printf '%s' "$status"
'''

VAULT_ID = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/kv-custplat-dev-abc123"

# Failures of the existence question that are not "not found": each must stop the deployment.
AMBIGUOUS_FAILURES = {
    "expired login": "AADSTS700082: The refresh token has expired due to inactivity. Please run 'az login' to setup account.",
    "throttling": "(TooManyRequests) The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00.",
    "timeout": "HTTPSConnectionPool(host='management.azure.com', port=443): Read timed out. (read timeout=300)",
    "missing rights": "(AuthorizationFailed) The client 'ci' with object id '1' does not have authorization to perform action 'Microsoft.KeyVault/vaults/secrets/read' over scope '...'.",
}


class DeployScript(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(prefix="deploy-test-"))
        # scripts/deploy runs from a copy of the repository, so a test can take files away.
        cls.copy = cls.tmp / "repo"
        for part in ("scripts", "infra", "apim-policies"):
            shutil.copytree(REPO / part, cls.copy / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        cls.bin = cls.tmp / "bin"
        cls.bin.mkdir()
        for name, text in (("az", FAKE_AZ), ("curl", FAKE_CURL)):
            (cls.bin / name).write_text(text)
            (cls.bin / name).chmod(0o755)
        cls.package = cls.tmp / "functionapp.zip"
        cls.package.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip is enough here
        cls.log = cls.tmp / "az.log"

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def deploy(self, *argv: str, **env: str) -> subprocess.CompletedProcess:
        if self.log.exists():
            self.log.unlink()
        full = {k: v for k, v in os.environ.items()
                if not k.startswith("FAKE_") and k not in ("GDPR_PSEUDONYM_KEY", "DEPLOYER_IP_RANGES", "KEY_VAULT_NAME_SALT", "KEY_VAULT_CREATE_MODE")}
        full.update({
            "PATH": f"{self.bin}:{os.environ['PATH']}", "AZ_LOG": str(self.log),
            "AUTH_ENTRA_ISSUER": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
            "AUTH_ENTRA_AUDIENCE": "api://platform-internal",
            "AUTH_EXTERNAL_ISSUER": "https://00000000-0000-0000-0000-000000000002.ciamlogin.com/00000000-0000-0000-0000-000000000002/v2.0",
            "AUTH_EXTERNAL_AUDIENCE": "api://platform-external",
            "APIM_PUBLISHER_EMAIL": "ops@example.test", "CLIENT_ORIGINS": "https://app.example.test",
            "ADMIN_IP_RANGES": "203.0.113.10", "DEPLOYER_IP_RANGES": "198.51.100.7/32",
            "DEPLOY_HISTORY_DIR": str(self.tmp / "deployed"),
        })
        full.update(env)
        if not argv or argv[0] != "--env":
            argv = ("--env", "dev", "--resource-group", "rg-test", "--package", str(self.package), *argv)
        return subprocess.run([str(self.copy / "scripts" / "deploy"), *argv], capture_output=True, text=True,
                              env=full, stdin=subprocess.DEVNULL, timeout=60)

    def calls(self, prefix: str = "") -> list[str]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [c for c in lines if c.startswith(prefix)]

    @staticmethod
    def key_of(call: str) -> str:
        return call.rsplit("GDPR=", 1)[1].split()[0]

    def assert_one_line_failure(self, proc: subprocess.CompletedProcess, *words: str) -> None:
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertTrue(lines, "no message")
        for word in words:
            self.assertIn(word, lines[-1])

    def assert_nothing_deployed(self) -> None:
        self.assertEqual(self.calls("deployment group"), [], "deployment started")
        self.assertEqual(self.calls("functionapp deployment"), [], "code deployed")
        self.assertTrue(all(self.key_of(c) == "-" for c in self.calls() if "GDPR=" in c), "a key was handed to az")

    # -- the GDPR key -----------------------------------------------------------------------

    def test_an_error_from_the_existence_check_stops_and_sends_no_key(self) -> None:
        """deploy: an error (not 'not found') from the GDPR key existence check stops it, no key sent"""
        for what, message in AMBIGUOUS_FAILURES.items():
            with self.subTest(what):
                proc = self.deploy("--yes", FAKE_VAULT_ID=VAULT_ID, FAKE_SECRET=message)
                self.assert_one_line_failure(proc, "could not tell whether", "gdpr-pseudonym-key")
                self.assertIn(message.split()[0], proc.stderr)
                self.assert_nothing_deployed()

    def test_a_failed_vault_lookup_is_not_taken_for_no_key(self) -> None:
        """deploy: a failed key vault look-up (az keyvault list, list-deleted) stops it, no key sent"""
        proc = self.deploy("--yes", FAKE_VAULT_LIST_ERROR=AMBIGUOUS_FAILURES["throttling"])
        self.assert_one_line_failure(proc, "could not list the key vaults")
        self.assert_nothing_deployed()
        proc = self.deploy("--yes", FAKE_DELETED_LIST_ERROR=AMBIGUOUS_FAILURES["missing rights"])
        self.assert_one_line_failure(proc, "soft-deleted key vaults", "KEY_VAULT_CREATE_MODE")
        self.assert_nothing_deployed()

    def test_not_found_generates_one_key_once(self) -> None:
        """deploy: 'not found' generates one key, used by the what-if and the deployment alike"""
        for case, env in (("vault without the secret", {"FAKE_VAULT_ID": VAULT_ID, "FAKE_SECRET": "missing"}),
                          ("no vault yet", {})):
            with self.subTest(case):
                proc = self.deploy("--yes", **env)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                what_if = self.calls("deployment group what-if")
                create = self.calls("deployment group create")
                self.assertEqual((len(what_if), len(create)), (1, 1), self.calls())
                key = self.key_of(create[0])
                self.assertNotEqual(key, "-", "no key handed to the first deployment")
                self.assertEqual(self.key_of(what_if[0]), key, "the what-if and the deployment got different keys")
                self.assertIn("KVMODE=default", create[0])
                self.assertIn("generated one", proc.stderr)
                later = [c for c in self.calls() if self.log.read_text().index(c) > self.log.read_text().index(create[0])]
                self.assertTrue(all(self.key_of(c) == "-" for c in later if "GDPR=" in c), "the key stayed in the environment after the deployment")
        keys = set()
        for _ in range(2):
            self.deploy("--yes", FAKE_VAULT_ID=VAULT_ID, FAKE_SECRET="missing")
            keys.add(self.key_of(self.calls("deployment group create")[0]))
        self.assertEqual(len(keys), 2, "two first deployments generated the same key")

    def test_an_existing_secret_is_never_overwritten_without_the_flag(self) -> None:
        """deploy: an existing GDPR key is never sent without --rotate-gdpr-key, even with GDPR_PSEUDONYM_KEY set"""
        proc = self.deploy("--yes", FAKE_VAULT_ID=VAULT_ID, FAKE_SECRET="exists")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        create = self.calls("deployment group create")
        self.assertEqual(len(create), 1)
        self.assertEqual([self.key_of(c) for c in self.calls("deployment group")], ["-", "-", "-"], self.calls())
        proc = self.deploy("--yes", FAKE_VAULT_ID=VAULT_ID, FAKE_SECRET="exists", GDPR_PSEUDONYM_KEY="a-key-someone-left-set")
        self.assert_one_line_failure(proc, "--rotate-gdpr-key", "GDPR_PSEUDONYM_KEY")
        self.assert_nothing_deployed()

    def test_rotation_needs_the_flag_and_a_confirmation(self) -> None:
        """deploy: --rotate-gdpr-key prints the consequences, needs --yes or a terminal, then sends the key"""
        proc = self.deploy("--rotate-gdpr-key", FAKE_VAULT_ID=VAULT_ID, FAKE_SECRET="exists")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("REPLACED", proc.stderr)
        self.assertIn("pseudonym", proc.stderr)
        self.assertIn("--yes", proc.stderr.strip().splitlines()[-1])
        self.assert_nothing_deployed()
        given = "rotated-key-from-the-operator"
        proc = self.deploy("--rotate-gdpr-key", "--yes", FAKE_VAULT_ID=VAULT_ID, FAKE_SECRET="exists", GDPR_PSEUDONYM_KEY=given)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("REPLACED", proc.stderr)
        create = self.calls("deployment group create")
        self.assertEqual(self.key_of(create[0]), hashlib.sha256(given.encode()).hexdigest()[:16])

    def test_a_deleted_vault_is_recovered_with_its_key(self) -> None:
        """deploy: a vault deleted from this resource group is recovered (createMode recover), no new key"""
        proc = self.deploy("--yes", FAKE_DELETED_VAULT="kv-custplat-dev-abc123")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        create = self.calls("deployment group create")
        self.assertIn("KVMODE=recover", create[0])
        self.assertEqual(self.key_of(create[0]), "-")
        self.assertIn("recovers it", proc.stderr)
        listed = self.calls("keyvault list-deleted")[0]
        self.assertIn("/resourceGroups/rg-test/providers/", listed)

    # -- what-if, confirmation, SCM, outputs --------------------------------------------------

    def test_what_if_comes_first_and_nothing_changes_without_yes(self) -> None:
        """deploy: the what-if runs and is shown first; without --yes and a terminal nothing is applied"""
        proc = self.deploy(FAKE_VAULT_ID=VAULT_ID)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("Resource changes: 42 to create.", proc.stdout)
        self.assertEqual(len(self.calls("deployment group what-if")), 1)
        self.assertEqual(self.calls("deployment group create"), [])
        self.assertIn("--yes", proc.stderr.strip().splitlines()[-1])
        proc = self.deploy("--what-if", FAKE_VAULT_ID=VAULT_ID)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.calls("deployment group create") + self.calls("functionapp deployment"), [])
        self.assertIn("would then zip-deploy", proc.stderr)
        proc = self.deploy("--yes", FAKE_VAULT_ID=VAULT_ID)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        order = [c.split(" |")[0] for c in self.calls() if c.startswith(("deployment group what-if", "deployment group create", "functionapp deployment"))]
        self.assertEqual([o.split()[2] for o in order], ["what-if", "create", "source"])
        self.assertIn(f"--parameters {self.copy / 'infra' / 'bicep' / 'dev.bicepparam'}", self.calls("deployment group create")[0])
        zips = self.calls("functionapp deployment source config-zip")
        self.assertIn("--name func-custplat-dev-abc123", zips[0])
        self.assertEqual(len(list((self.tmp / "deployed").glob("dev-*.zip"))) >= 1, True, "package not kept")

    def test_an_unreachable_scm_endpoint_is_explained(self) -> None:
        """deploy: an unreachable SCM endpoint stops the zip deploy with the cause and the fix"""
        proc = self.deploy("--yes", FAKE_VAULT_ID=VAULT_ID, FAKE_SCM_STATUS="403", DEPLOYER_IP_RANGES="")
        self.assert_one_line_failure(proc, "SCM", "DEPLOYER_IP_RANGES is empty", "inside the VNet")
        self.assertEqual(self.calls("functionapp deployment"), [])
        proc = self.deploy("--yes", FAKE_VAULT_ID=VAULT_ID, FAKE_SCM_STATUS="000")
        self.assert_one_line_failure(proc, "no connection", "198.51.100.7/32")
        proc = self.deploy("--yes", "--skip-infra", FAKE_SCM_STATUS="401")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(self.calls("functionapp deployment source config-zip")), 1)

    def test_outputs_file_for_ci(self) -> None:
        """deploy: --outputs writes the app name and API URLs for the pipeline's smoke test"""
        out = self.tmp / "out" / "deploy.env"
        proc = self.deploy("--yes", "--outputs", str(out), FAKE_VAULT_ID=VAULT_ID)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(out.read_text().splitlines(), [
            "FUNCTION_APP_NAME=func-custplat-dev-abc123",
            "INTERNAL_API_URL=https://apim.example.test/internal/api",
            "EXTERNAL_API_URL=https://apim.example.test/api",
        ])

    def test_refusals_are_one_line(self) -> None:
        """deploy: refuses with one line (missing setting, openapi.json, resource group, package; prod without --yes)"""
        proc = self.deploy("--yes", AUTH_ENTRA_ISSUER="")
        self.assert_one_line_failure(proc, "AUTH_ENTRA_ISSUER")
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1)
        self.assert_nothing_deployed()
        openapi = self.copy / "apim-policies" / "openapi.json"
        aside = self.tmp / "openapi.json.aside"
        openapi.rename(aside)
        try:
            proc = self.deploy("--yes")
        finally:
            aside.rename(openapi)
        self.assert_one_line_failure(proc, "openapi.json")
        self.assert_nothing_deployed()
        proc = self.deploy("--env", "dev", "--resource-group", "missing-rg", "--package", str(self.package), "--yes")
        self.assert_one_line_failure(proc, "az group create")
        proc = self.deploy("--env", "prod", "--resource-group", "rg-test", "--package", str(self.package), FAKE_VAULT_ID=VAULT_ID)
        self.assert_one_line_failure(proc, "--yes")
        self.assertEqual(self.calls("deployment group create"), [])
        proc = self.deploy("--env", "dev", "--resource-group", "rg-test", "--package", str(self.tmp / "nope.zip"), "--yes")
        self.assert_one_line_failure(proc, "scripts/package")
        proc = self.deploy("--env", "staging", "--resource-group", "rg-test", "--package", str(self.package), "--what-if")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("-stg-", self.calls("keyvault list")[0])


if __name__ == "__main__":
    unittest.main()
