"""Tests of the cosmosDBTrigger rules in scripts/lib/infra_checks.py (cosmos_trigger_problems and
the parsers it relies on), on a relay function.json and Bicep settings written here: the real
ones pass, and each way of breaking them is reported. scripts/test-infra runs them, one check per
test; `python3 -m unittest scripts/tests/test_infra_checks.py` runs them alone."""

from __future__ import annotations

import copy
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))
import infra_checks  # noqa: E402

RELAY = {
    "bindings": [{
        "type": "cosmosDBTrigger", "direction": "in", "name": "documents", "connection": "CosmosConnection",
        "databaseName": "%COSMOS_DATABASE%", "containerName": "tenantdata", "leaseContainerName": "leases",
        "leaseContainerPrefix": "outbox-relay", "createLeaseContainerIfNotExists": False,
        "startFromBeginning": True, "maxItemsPerInvocation": 100, "feedPollDelay": 1000,
    }],
    "retry": {"strategy": "exponentialBackoff", "maxRetryCount": -1,
              "minimumInterval": "00:00:02", "maximumInterval": "00:05:00"},
}

APP_SETTINGS = """
var appSettings = [
  { name: 'COSMOS_ENDPOINT', value: cosmosEndpoint }
  { name: 'COSMOS_DATABASE', value: cosmosDatabaseName }
  { name: 'COSMOS_REGION', value: location } // preferred region: the account's
  { name: 'AZURE_CLIENT_ID', value: clientId }
  { name: 'GDPR_PSEUDONYM_KEY', value: '@Microsoft.KeyVault(SecretUri=${gdprKeySecretUri})' }
  { name: 'CosmosConnection__accountEndpoint', value: cosmosEndpoint }
  { name: 'CosmosConnection__credential', value: 'managedidentity' }
  { name: 'CosmosConnection__clientId', value: clientId }
]
"""

CONTAINERS = {
    "tenantdata": {"paths": ["/tenantId", "/scope"], "kind": "MultiHash", "version": 2, "defaultTtl": -1},
    "jobs": {"paths": ["/jobName"], "kind": "Hash", "version": 2, "defaultTtl": None},
    "leases": {"paths": ["/id"], "kind": "Hash", "version": 2, "defaultTtl": -1},
}


def problems(relay=None, settings_text=APP_SETTINGS, containers=None, database="platform", drop=()):
    settings = infra_checks.bicep_app_settings(settings_text)
    for key in drop:
        settings.pop(key)
    functions = {"OutboxRelay": RELAY if relay is None else relay, "Health": {"bindings": [{"type": "httpTrigger"}]}}
    found, _ = infra_checks.cosmos_trigger_problems(functions, settings, CONTAINERS if containers is None else containers, database)
    return found


def relay_with(**changes):
    relay = copy.deepcopy(RELAY)
    for key, value in changes.items():
        if key == "retry":
            relay["retry"] = value
        elif value is None:
            relay["bindings"][0].pop(key, None)
        else:
            relay["bindings"][0][key] = value
    return relay


class CosmosTriggerRules(unittest.TestCase):
    def assertReported(self, found, *words):
        self.assertEqual(len(found), 1, found)
        for word in words:
            self.assertIn(word, found[0])

    def test_the_relay_as_generated_passes(self):
        """infra checks: the outbox relay's function.json and the Bicep settings pass the Cosmos DB trigger rules"""
        self.assertEqual(problems(), [])
        settings = infra_checks.bicep_app_settings(APP_SETTINGS)
        self.assertEqual(settings["COSMOS_REGION"], "location")
        self.assertEqual(settings["GDPR_PSEUDONYM_KEY"], "'@Microsoft.KeyVault(SecretUri=${gdprKeySecretUri})'")

    def test_the_connection_needs_the_identity_settings(self):
        """infra checks: a Cosmos DB trigger connection without accountEndpoint, managedidentity or the app's clientId is reported"""
        self.assertReported(problems(drop=["CosmosConnection__accountEndpoint"]), "CosmosConnection__accountEndpoint")
        self.assertReported(problems(drop=["CosmosConnection__clientId"]), "CosmosConnection__clientId")
        self.assertReported(problems(settings_text=APP_SETTINGS.replace("'managedidentity'", "'secret'")), "managedidentity")
        other = APP_SETTINGS.replace("{ name: 'CosmosConnection__clientId', value: clientId }",
                                     "{ name: 'CosmosConnection__clientId', value: otherId }")
        self.assertReported(problems(settings_text=other), "AZURE_CLIENT_ID")
        self.assertReported(problems(relay=relay_with(connection="CosmosDB")), "CosmosDB__accountEndpoint")
        # Without `connection` the extension's default prefix applies.
        self.assertReported(problems(relay=relay_with(connection=None)), "CosmosDB__accountEndpoint")

    def test_containers_must_be_declared_and_the_lease_container_keyed_by_id(self):
        """infra checks: a monitored or lease container missing from Bicep, or a lease container not keyed /id, is reported"""
        self.assertReported(problems(relay=relay_with(containerName="orders")), "containerName 'orders'")
        # (`leases` is then used by no trigger, which is reported too.)
        for lease, words in (("relay-leases", "'relay-leases' is not a container"), ("jobs", "/id"), ("tenantdata", "differ")):
            found = problems(relay=relay_with(leaseContainerName=lease))
            self.assertEqual(len(found), 2, found)
            self.assertIn(words, found[0])
            self.assertIn("['leases'], which no cosmosDBTrigger uses", found[1])
        # The default lease container name is `leases`.
        self.assertEqual(problems(relay=relay_with(leaseContainerName=None)), [])
        unused = dict(CONTAINERS)
        self.assertReported(problems(relay={"bindings": []}, containers=unused), "leases")

    def test_the_lease_container_is_never_created_by_the_extension(self):
        """infra checks: createLeaseContainerIfNotExists true is reported (the identity cannot create containers)"""
        self.assertReported(problems(relay=relay_with(createLeaseContainerIfNotExists=True)), "createLeaseContainerIfNotExists")
        self.assertEqual(problems(relay=relay_with(createLeaseContainerIfNotExists=None)), [])

    def test_a_failed_batch_must_be_retried_until_it_succeeds(self):
        """infra checks: a Cosmos DB trigger without retry, or with a finite maxRetryCount, is reported (the batch would be lost)"""
        self.assertReported(problems(relay=relay_with(retry=None)), "no `retry`")
        finite = dict(RELAY["retry"], maxRetryCount=5)
        self.assertReported(problems(relay=relay_with(retry=finite)), "maxRetryCount is 5")

    def test_the_database_is_a_setting_bicep_sets_or_its_name(self):
        """infra checks: a trigger's databaseName must be %SETTING% of a Bicep setting or the database Bicep creates"""
        self.assertReported(problems(relay=relay_with(databaseName="%NO_SUCH_SETTING%")), "NO_SUCH_SETTING")
        self.assertEqual(problems(relay=relay_with(databaseName="platform")), [])
        self.assertReported(problems(relay=relay_with(databaseName="other")), "'other'")

    def test_function_json_keys_are_case_insensitive_like_the_host(self):
        """infra checks: function.json keys are read case-insensitively, as the host does"""
        relay = copy.deepcopy(RELAY)
        binding = relay["bindings"][0]
        binding["CreateLeaseContainerIfNotExists"] = binding.pop("createLeaseContainerIfNotExists")
        self.assertEqual(problems(relay=relay), [])
        binding["CreateLeaseContainerIfNotExists"] = True
        self.assertReported(problems(relay=relay), "createLeaseContainerIfNotExists")

    def test_durations(self):
        """infra checks: function.json TimeSpans and Service Bus ISO 8601 durations are read right"""
        self.assertEqual(infra_checks.timespan_seconds("00:05:00"), 300)
        self.assertEqual(infra_checks.timespan_seconds("1.00:00:02"), 86402)
        self.assertEqual(infra_checks.iso_duration_seconds("PT1H"), 3600)
        self.assertEqual(infra_checks.iso_duration_seconds("P1DT30M"), 88200)
        for bad in ("PT", "1H", "P1Y"):
            with self.assertRaises(ValueError):
                infra_checks.iso_duration_seconds(bad)
        with self.assertRaises(ValueError):
            infra_checks.timespan_seconds("5m")


if __name__ == "__main__":
    unittest.main()
