"""Tests of rules in scripts/lib/infra_checks.py: the cosmosDBTrigger rules (cosmos_trigger_problems
and the parsers it relies on), on a relay function.json and Bicep settings written here; and the
payments rules (payment-events duplicate detection and roles, secret settings and parameters, the
webhook as the only route without validate-jwt, the NAT gateway), on the repository's own Bicep and
policies, changed in each test. The real ones pass, and each way of breaking them is reported.
scripts/test-infra runs them, one check per test; `.tools/venv/bin/python -m unittest
scripts/tests/test_infra_checks.py` runs them alone."""

from __future__ import annotations

import copy
import sys
import unittest
import xml.etree.ElementTree as ET
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


# ---- Payments rules, on the repository's files ------------------------------------------------

REPO = Path(__file__).resolve().parent.parent.parent
BICEP = REPO / "infra" / "bicep"
WEBHOOK_POLICY = "apim-policies/external/payment-webhook.xml"


def bicep(name: str, text: str | None = None) -> "infra_checks.BicepFile":
    path = BICEP / name
    return infra_checks.BicepFile(path, path.read_text() if text is None else text)


def changed(name: str, old: str, new: str, count: int = 1) -> str:
    """The file's text with `old` replaced by `new`; `old` must occur `count` times (so a test
    cannot silently stop changing anything when the file changes)."""
    text = (BICEP / name).read_text() if not name.startswith("apim-policies/") else (REPO / name).read_text()
    assert text.count(old) == count, f"{name}: {old!r} occurs {text.count(old)} times, expected {count}"
    return text.replace(old, new)


class PaymentMessagingRules(unittest.TestCase):
    def problems(self, sb=None, access=None):
        return infra_checks.payment_messaging_problems(bicep("modules/serviceBus.bicep", sb), bicep("modules/access.bicep", access))

    def test_the_repository_passes(self):
        """infra checks: payment-events (duplicate detection as order-events), its subscriptions, order-events/payments and their roles pass"""
        self.assertEqual(self.problems(), [])

    def test_payment_events_needs_duplicate_detection_like_order_events(self):
        """infra checks: payment-events without duplicate detection, or with another window than order-events, is reported"""
        block = "name: 'payment-events'\n  properties: {\n    requiresDuplicateDetection: true"
        off = changed("modules/serviceBus.bicep", block, block.replace("true", "false"))
        found = self.problems(sb=off)
        self.assertEqual(len(found), 1, found)
        self.assertIn("requiresDuplicateDetection", found[0])
        window = "name: 'payment-events'\n  properties: {\n    requiresDuplicateDetection: true\n    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow"
        other = changed("modules/serviceBus.bicep", window, window.replace("duplicateDetectionWindow", "'PT10M'"))
        found = self.problems(sb=other)
        self.assertEqual(len(found), 1, found)
        self.assertIn("not order-events'", found[0])
        gone = changed("modules/serviceBus.bicep", "name: 'payment-events'", "name: 'payments-events'")
        self.assertIn("declares no topic payment-events", " ".join(self.problems(sb=gone)))

    def test_each_subscription_on_its_topic(self):
        """infra checks: a missing payment subscription, or one on the wrong topic, is reported"""
        moved = changed("modules/serviceBus.bicep", "parent: paymentEvents\n  name: 'notifications'", "parent: orderEvents\n  name: 'notifications'")
        found = self.problems(sb=moved)
        self.assertTrue(any("notifications on topic payment-events" in f for f in found), found)
        gone = changed("modules/serviceBus.bicep", "name: 'payments'", "name: 'refunds'")
        self.assertTrue(any("payments on topic order-events" in f for f in self.problems(sb=gone)))

    def test_the_app_identity_needs_send_and_receive(self):
        """infra checks: no Data Sender on payment-events, or no Data Receiver on a payment subscription, is reported"""
        no_send = changed("modules/access.bicep", "scope: paymentEvents\n  name: guid(paymentEvents.id, principalId, roles.serviceBusDataSender)",
                          "scope: serviceBus\n  name: guid(paymentEvents.id, principalId, roles.serviceBusDataSender)")
        found = self.problems(access=no_send)
        # The namespace-wide grant would do; this one is Sender on the namespace, so still fine ...
        self.assertEqual(found, [])
        # ... but as the Receiver role it is not a Sender role.
        receiver = no_send.replace("roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)\n    principalId: principalId\n    principalType: 'ServicePrincipal'\n  }\n}\n\n// The order flow",
                                   "roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)\n    principalId: principalId\n    principalType: 'ServicePrincipal'\n  }\n}\n\n// The order flow")
        self.assertNotEqual(receiver, no_send)
        found = self.problems(access=receiver)
        self.assertEqual(len(found), 1, found)
        self.assertIn("no Azure Service Bus Data Sender on payment-events", found[0])
        no_receive = changed("modules/access.bicep", "scope: paymentOrdersSubscription", "scope: paymentNotificationsSubscription")
        found = self.problems(access=no_receive)
        self.assertEqual(len(found), 1, found)
        self.assertIn("Data Receiver on payment-events/orders", found[0])
        conditional = changed("modules/access.bicep", "resource paymentsReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {",
                              "resource paymentsReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantServiceBusScaleRead) {")
        self.assertIn("Data Receiver on order-events/payments", " ".join(self.problems(access=conditional)))


class SecretSettingRules(unittest.TestCase):
    def settings(self, text=None):
        return infra_checks.bicep_app_settings((BICEP / "modules/functionApp.bicep").read_text() if text is None else text)

    def params(self):
        return {pf.name: pf.read_text() for pf in BICEP.glob("*.bicepparam")}

    def test_the_repository_passes(self):
        """infra checks: GDPR and PayPal secret settings are Key Vault references, their parameters @secure() without values, PayPal URL per environment"""
        self.assertEqual(infra_checks.secret_settings_problems(self.settings()), [])
        self.assertEqual(infra_checks.secret_param_problems((BICEP / "main.bicep").read_text(), self.params()), [])
        self.assertEqual(infra_checks.paypal_base_url_problems(self.params()), [])

    def test_a_literal_or_missing_secret_setting_is_reported(self):
        """infra checks: a PayPal secret app setting holding a value, a parameter, or missing is reported"""
        old = "{ name: 'PAYPAL_CLIENT_SECRET', value: '@Microsoft.KeyVault(SecretUri=${paypal.clientSecretSecretUri})' }"
        for value, words in (("'EJa9-live-secret'", "a literal"), ("paypalClientSecret", "paypalClientSecret, not a Key Vault reference"),
                             ("'@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)'", "a literal")):
            text = changed("modules/functionApp.bicep", old, "{ name: 'PAYPAL_CLIENT_SECRET', value: " + value + " }")
            found = infra_checks.secret_settings_problems(self.settings(text))
            self.assertEqual(len(found), 1, found)
            self.assertIn("PAYPAL_CLIENT_SECRET", found[0])
            self.assertIn(words, found[0])
        text = changed("modules/functionApp.bicep", old + "\n", "")
        self.assertEqual(infra_checks.secret_settings_problems(self.settings(text)), ["PAYPAL_CLIENT_SECRET is not set in the Bicep app settings"])
        webhook = changed("modules/functionApp.bicep", "value: '@Microsoft.KeyVault(SecretUri=${paypal.webhookIdsSecretUri})'", "value: 'WH-1,WH-2'")
        self.assertIn("PAYPAL_WEBHOOK_IDS", " ".join(infra_checks.secret_settings_problems(self.settings(webhook))))

    def test_secret_parameters_have_no_values_in_the_repository(self):
        """infra checks: a secret parameter without @secure(), with a default, or set to a value in a .bicepparam file is reported"""
        main = (BICEP / "main.bicep").read_text()
        unsecured = changed("main.bicep", "@secure()\nparam paypalClientSecret string = ''", "param paypalClientSecret string = ''")
        found = infra_checks.secret_param_problems(unsecured, self.params())
        self.assertEqual(len(found), 1, found)
        self.assertIn("paypalClientSecret is not @secure()", found[0])
        default = changed("main.bicep", "param paypalClientId string = ''", "param paypalClientId string = 'AZx-client'")
        self.assertIn("has the default 'AZx-client'", " ".join(infra_checks.secret_param_problems(default, self.params())))
        params = self.params()
        params["prod.bicepparam"] += "\nparam paypalClientSecret = 'EJa9-live-secret'\n"
        found = infra_checks.secret_param_problems(main, params)
        self.assertEqual(len(found), 1, found)
        self.assertIn("prod.bicepparam sets the secret paypalClientSecret", found[0])
        params = self.params()
        params["dev.bicepparam"] += "\nparam paypalClientSecret = readEnvironmentVariable('PAYPAL_CLIENT_SECRET', '')\n"
        self.assertEqual(infra_checks.secret_param_problems(main, params), [])

    def test_paypal_live_only_in_prod(self):
        """infra checks: PayPal's live URL outside prod, or the sandbox in prod, is reported"""
        params = self.params()
        params["prod.bicepparam"] = params["prod.bicepparam"].replace("https://api-m.paypal.com", "https://api-m.sandbox.paypal.com")
        params["dev.bicepparam"] = params["dev.bicepparam"].replace("https://api-m.sandbox.paypal.com", "https://api-m.paypal.com")
        found = infra_checks.paypal_base_url_problems(params)
        self.assertEqual(len(found), 2, found)
        self.assertIn("dev.bicepparam: paypalBaseUrl is https://api-m.paypal.com", found[0])
        self.assertIn("prod.bicepparam: paypalBaseUrl is https://api-m.sandbox.paypal.com", found[1])


class JwtExemptionRules(unittest.TestCase):
    def policies(self, **changes):
        docs = {str(p.relative_to(REPO)): ET.parse(p).getroot() for p in (REPO / "apim-policies").rglob("*.xml")}
        for path, text in changes.items():
            docs[path] = ET.fromstring(text)
        return docs

    def problems(self, apim=None, **policies):
        return infra_checks.jwt_exemption_problems(bicep("modules/apim.bicep", apim), self.policies(**policies))[0]

    def test_the_repository_passes(self):
        """infra checks: the PayPal webhook is the only gateway operation without validate-jwt"""
        found, notes = infra_checks.jwt_exemption_problems(bicep("modules/apim.bicep"), self.policies())
        self.assertEqual(found, [])
        self.assertEqual(notes, ["POST /v1/payments/webhooks/{provider} without a token"])

    def test_another_operation_without_jwt_is_reported(self):
        """infra checks: a second operation whose policy skips the API's validate-jwt is reported"""
        extra = (BICEP / "modules/apim.bicep").read_text() + """
resource refundPolicy 'Microsoft.ApiManagement/service/apis/operations/policies@2024-05-01' = {
  parent: refundOperation
  name: 'policy'
  properties: {
    format: 'xml'
    value: loadTextContent('../../../apim-policies/external/payment-webhook.xml')
  }
}

resource refundOperation 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' = {
  parent: internalApi
  name: 'refund-open'
  properties: {
    method: 'POST'
    urlTemplate: '/v1/payments/{id}/refund'
  }
}
"""
        found = self.problems(apim=extra)
        self.assertEqual(len(found), 1, found)
        self.assertIn("refundOperation ('POST' '/v1/payments/{id}/refund' on internalApi", found[0])
        # With <base /> in its inbound section it inherits validate-jwt, and is fine.
        inherits = extra.replace("external/payment-webhook.xml')\n  }\n}\n\nresource refundOperation", "internal/refund.xml')\n  }\n}\n\nresource refundOperation")
        based = "<policies><inbound><base /><rate-limit calls='5' renewal-period='60' /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"
        self.assertEqual(self.problems(apim=inherits, **{"apim-policies/internal/refund.xml": based}), [])

    def test_the_webhook_must_not_inherit_jwt_and_must_exist(self):
        """infra checks: the webhook operation inheriting validate-jwt, missing, or moved to another path is reported"""
        text = (REPO / WEBHOOK_POLICY).read_text().replace("\t<inbound>\n", "\t<inbound>\n\t\t<base />\n", 1)
        found = self.problems(**{WEBHOOK_POLICY: text})
        self.assertEqual(len(found), 1, found)
        self.assertIn("inherits the API's validate-jwt", found[0])
        moved = changed("modules/apim.bicep", "urlTemplate: '/v1/payments/webhooks/{provider}'", "urlTemplate: '/v1/payments/{id}'")
        found = self.problems(apim=moved)
        self.assertEqual(len(found), 2, found)
        self.assertIn("skips the API's validate-jwt", found[0])
        self.assertIn("no operation POST /v1/payments/webhooks/{provider}", found[1])

    def test_an_api_without_jwt_is_reported(self):
        """infra checks: an API whose policy has no validate-jwt is reported"""
        api = (REPO / "apim-policies/internal/api.xml").read_text()
        start, end = api.index("<validate-jwt"), api.index("</validate-jwt>") + len("</validate-jwt>")
        found = self.problems(**{"apim-policies/internal/api.xml": api[:start] + api[end:]})
        self.assertEqual(found, ["API internalApi: its policy has no validate-jwt in <inbound>"])

    def test_the_webhook_forwards_body_and_paypal_headers_unchanged_and_is_rate_limited(self):
        """infra checks: the webhook policy rewriting the body or a PAYPAL-* header, or without a rate limit, is reported"""
        base = (REPO / WEBHOOK_POLICY).read_text()
        fwd = '<include-fragment fragment-id="forward-to-function-app" />'
        for insert, words in (('<set-body>{}</set-body>', "body"),
                              ('<set-variable name="b" value="@(context.Request.Body.As&lt;JObject&gt;())" />', "body"),
                              ('<set-header name="PAYPAL-TRANSMISSION-SIG" exists-action="delete" />', "PAYPAL-TRANSMISSION-SIG")):
            found = self.problems(**{WEBHOOK_POLICY: base.replace(fwd, insert + fwd)})
            self.assertEqual(len(found), 1, (insert, found))
            self.assertIn(words, found[0])
        kept = base.replace(fwd, '<set-variable name="b" value="@(context.Request.Body.As&lt;string&gt;(preserveContent: true))" />' + fwd)
        self.assertEqual(self.problems(**{WEBHOOK_POLICY: kept}), [])
        start = base.index("<rate-limit-by-key")
        unlimited = base[:start] + base[base.index("/>", start) + 2:]
        self.assertEqual(self.problems(**{WEBHOOK_POLICY: unlimited}), [f"{WEBHOOK_POLICY}: the webhook route is not rate-limited"])

    def test_declared_operations_are_read_from_the_loop_and_the_resources(self):
        """infra checks: apim.bicep's operations (the webhook, named as its imported operationId) are found, for the openapi.json overlap check"""
        ops = infra_checks.bicep_operations(bicep("modules/apim.bicep"))
        self.assertIn(("POST", "/v1/payments/webhooks/{provider}"), ops)
        names = infra_checks.bicep_operation_names(bicep("modules/apim.bicep"))
        self.assertEqual(names[("POST", "/v1/payments/webhooks/{provider}")], "receivePaymentWebhook")


class NatGatewayRules(unittest.TestCase):
    def problems(self, network=None, function_app=None, main=None):
        return infra_checks.nat_gateway_problems(bicep("modules/network.bicep", network),
                                                 (BICEP / "modules/functionApp.bicep").read_text() if function_app is None else function_app,
                                                 bicep("main.bicep", main))

    def test_the_repository_passes(self):
        """infra checks: NAT gateway with a static Standard IP on the function subnet, all traffic routed, IP output: passes"""
        self.assertEqual(self.problems(), [])

    def test_no_nat_gateway_on_the_function_subnet_is_reported(self):
        """infra checks: a NAT gateway missing from the function app's subnet (absent, or on another subnet) is reported"""
        attach = "          // Outbound to the internet from one static IP (see above).\n          natGateway: {\n            id: natGateway.id\n          }\n"
        detached = changed("modules/network.bicep", attach, "")
        found = self.problems(network=detached)
        self.assertEqual(len(found), 1, found)
        self.assertIn("subnet snet-func", found[0])
        elsewhere = detached.replace("privateEndpointNetworkPolicies: 'Enabled'\n", "privateEndpointNetworkPolicies: 'Enabled'\n" + attach)
        self.assertNotEqual(elsewhere, detached)
        self.assertEqual(len(self.problems(network=elsewhere)), 1)

    def test_the_ip_must_be_static_standard_and_output(self):
        """infra checks: a dynamic or Basic public IP on the NAT gateway, or no IP output in main.bicep, is reported"""
        dynamic = changed("modules/network.bicep", "publicIPAllocationMethod: 'Static'", "publicIPAllocationMethod: 'Dynamic'")
        self.assertIn("expected 'Static'", " ".join(self.problems(network=dynamic)))
        basic = changed("modules/network.bicep", "  sku: {\n    name: 'Standard'\n    tier: 'Regional'", "  sku: {\n    name: 'Basic'\n    tier: 'Regional'")
        self.assertIn("sku is not Standard", " ".join(self.problems(network=basic)))
        no_output = changed("main.bicep", "output outboundIpAddress string = network.outputs.natPublicIpAddress", "")
        found = self.problems(main=no_output)
        self.assertEqual(len(found), 1, found)
        self.assertIn("main.bicep does not output", found[0])

    def test_all_traffic_must_be_routed_through_the_vnet(self):
        """infra checks: a function app not routing all outbound traffic through the VNet is reported"""
        text = (BICEP / "modules/functionApp.bicep").read_text().replace("vnetRouteAllEnabled: true", "vnetRouteAllEnabled: false")
        found = self.problems(function_app=text)
        self.assertEqual(len(found), 1, found)
        self.assertIn("vnetRouteAllEnabled", found[0])


if __name__ == "__main__":
    unittest.main()


class SignalRUserHeaderRules(unittest.TestCase):
    """The SignalR user id header reaches the negotiate function only as API Management sets it
    from the validated token (the repository's own policies, changed in each test)."""

    REPO = Path(__file__).resolve().parent.parent.parent

    def policy(self, api: str) -> ET.Element:
        return ET.parse(self.REPO / "apim-policies" / api / "api.xml").getroot()

    def test_the_repository_policies_set_it_after_validate_jwt_from_the_token(self):
        for api in ("external", "internal"):
            self.assertEqual(infra_checks.signalr_user_header_problems(self.policy(api), api), [])

    def test_a_policy_that_does_not_set_it_or_sets_it_from_the_request_is_reported(self):
        for api in ("external", "internal"):
            policy = self.policy(api)
            inbound = policy.find("inbound")
            header = next(el for el in inbound if el.get("name") == infra_checks.SIGNALR_USER_HEADER)
            inbound.remove(header)
            self.assertTrue(infra_checks.signalr_user_header_problems(policy, api))
            from_request = copy.deepcopy(header)
            from_request.find("value").text = '@(context.Request.Headers.GetValueOrDefault("x-ms-signalr-userid", ""))'
            inbound.append(from_request)
            self.assertTrue(infra_checks.signalr_user_header_problems(policy, api))
            before = copy.deepcopy(header)
            policy = self.policy(api)
            inbound = policy.find("inbound")
            inbound.insert(0, before)
            self.assertTrue(infra_checks.signalr_user_header_problems(policy, api))
