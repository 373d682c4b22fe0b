// Log alerts (Azure Monitor scheduled query rules) on the Application Insights component the
// Functions host writes to (monitoring.bicep), and the action group they notify.
//
// The outbox relay (functions/OutboxRelay, a Cosmos DB change feed trigger) publishes every
// message the app sends. A failed invocation is retried for ever (function.json `retry`,
// maxRetryCount -1) without moving the lease, so a failing relay does not lose messages: it holds
// back every tenant on its partition range, and the outbox records' TTL (OUTBOX_TTL_SECONDS)
// keeps running. Two alerts say so within minutes:
//   outbox-relay-failures  any failed OutboxRelay invocation in 5 minutes (each retry is one)
//   outbox-lag             the relay's reported lag above lagThresholdSeconds over 10 minutes
// Neither fires when the relay is not invoked at all (the trigger's listener cannot start, the
// app is stopped): then the relay writes neither requests nor lag traces. The app's readiness
// (OUTBOX_LAG_DEGRADED_SECONDS) is what can see that case.
//
// Breach detection (README, "Breach detection"): every finding is published on the
// security-alerts topic and logged as a `security event` line. Two alerts, to the security
// recipients (securityAlertEmailAddress, e.g. the data-protection officer, plus
// alertActionGroupId):
//   security-alerts        a message arrived on the security-alerts topic (the namespace's
//                          IncomingMessages metric for that entity: platform metrics are
//                          exact, never sampled), within 5 minutes
//   security-events        the findings' log lines over 5 minutes, by rule and tenant (traces are
//                          sampled: this one gives detail, the metric alert is the one that
//                          cannot miss)
// Both carry ids and counts only; the findings themselves are at GET /api/v1/audit/security-events.
//
// Notifications: the rules always exist (fired alerts show in the portal and in Azure Monitor's
// alert list). To be told, set alertEmailAddress (an action group with that e-mail receiver is
// created here) and/or alertActionGroupId (an existing action group: on-call, Teams, ITSM).

@description('Azure region of the alert rules (the Application Insights component\'s).')
param location string

@description('Resource name prefix, e.g. custplat-dev.')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Resource id of the Application Insights component the rules query (requests, traces).')
param appInsightsId string

@description('E-mail address told when an alert fires. Empty: no e-mail action group is created.')
param alertEmailAddress string = ''

@description('Resource id of an existing action group to notify as well. Empty: none.')
param alertActionGroupId string = ''

@description('Resource id of the Service Bus namespace (the security-alerts topic\'s metrics).')
param serviceBusNamespaceId string

@description('E-mail address told when breach detection raises a finding (the data-protection officer, a security mailbox). Empty: no security action group is created; alertActionGroupId is still told.')
param securityAlertEmailAddress string = ''

@description('Outbox lag in seconds (the oldest unsent record\'s age, as the relay reports it) above which the lag alert fires.')
@minValue(1)
param lagThresholdSeconds int = 300

// Action group names are unique in the resource group; the short name (at most 12 characters)
// appears in the e-mails and SMS.
resource emailGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: 'ag-${namePrefix}-alerts'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: take(replace(namePrefix, '-', ''), 12)
    enabled: true
    emailReceivers: [
      {
        name: 'alert-email'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

resource securityGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(securityAlertEmailAddress)) {
  name: 'ag-${namePrefix}-security'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: take('sec${replace(namePrefix, '-', '')}', 12)
    enabled: true
    emailReceivers: [
      {
        name: 'security-email'
        emailAddress: securityAlertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var securityActionGroups = concat(empty(securityAlertEmailAddress) ? [] : [securityGroup.id], empty(alertActionGroupId) ? [] : [alertActionGroupId])

var actionGroups = concat(empty(alertEmailAddress) ? [] : [emailGroup.id], empty(alertActionGroupId) ? [] : [alertActionGroupId])

// The Functions host writes one request per invocation (retries included): name and
// operation_Name are the function's name (the folder of its function.json), success false when the
// invocation failed, which for a custom handler means a non-2xx reply or no reply. Requests are
// never sampled (host.json samplingSettings.excludedTypes), so a count is exact. `success` is
// compared as text, which holds whether the column is a bool or the string "False".
var relayFailuresQuery = '''
requests
| where name == "OutboxRelay" or operation_Name == "OutboxRelay"
| where tostring(success) =~ "false"
| project timestamp, name, resultCode, operation_Id
'''

// The relay logs the lag as a structured field named outbox_lag_seconds. Under the Functions host
// the handler's JSON log lines (LOG_FORMAT=json, on stderr) arrive as traces whose message is the
// line itself (category Host.Function.Console), so the field is read from the message (parse_json
// of a line that is not JSON gives a string, whose fields are null); a logger that writes
// structured properties puts it in customDimensions instead, as prop__outbox_lag_seconds (the
// host's ILogger state) or outbox_lag_seconds. The query takes whichever is there. Traces are
// sampled (host.json excludes only requests and exceptions), so one high reading may be missed; a
// lag that lasts ten minutes is not.
var outboxLagQuery = '''
traces
| where message contains "outbox_lag_seconds" or tostring(customDimensions) contains "outbox_lag_seconds"
| extend line = parse_json(message)
| extend outbox_lag_seconds = todouble(coalesce(customDimensions.prop__outbox_lag_seconds, customDimensions.outbox_lag_seconds, line.outbox_lag_seconds, line.fields.outbox_lag_seconds))
| where isnotnull(outbox_lag_seconds)
| project timestamp, outbox_lag_seconds
'''

resource relayFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-outbox-relay-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Outbox relay: failed invocations'
    description: 'OutboxRelay failed at least once in 5 minutes. The host retries the batch for ever without moving on, so messages of the tenants on that lease wait. Look at the relay\'s traces and exceptions for the cause (Service Bus throttling or outage, the identity\'s roles, a record the relay cannot classify).'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: relayFailuresQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource outboxLag 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-outbox-lag'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Outbox relay: lag'
    description: 'The outbox relay reported a lag above ${lagThresholdSeconds} seconds in the last 10 minutes: messages the app wrote are waiting to be sent. An outbox record that outlives OUTBOX_TTL_SECONDS unsent is deleted and never sent.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    criteria: {
      allOf: [
        {
          query: outboxLagQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'outbox_lag_seconds'
          operator: 'GreaterThan'
          threshold: lagThresholdSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// The handler logs each finding as one line `security event` with the fields security_event,
// rule, tenant, principal, count, threshold and window_seconds (ids and counts only); read from
// the JSON line or from customDimensions, as for the outbox lag.
var securityEventsQuery = '''
traces
| where message contains "security event" or tostring(customDimensions) contains "security_event"
| extend line = parse_json(message)
| extend rule = tostring(coalesce(customDimensions.prop__rule, customDimensions.rule, line.rule, line.fields.rule))
| extend tenant = tostring(coalesce(customDimensions.prop__tenant, customDimensions.tenant, line.tenant, line.fields.tenant))
| where isnotempty(rule)
| summarize findings = count() by rule, tenant
'''

resource securityAlertsTopic 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${namePrefix}-security-alerts'
  location: 'global'
  tags: tags
  properties: {
    description: 'Breach detection raised a finding (a message on the security-alerts topic). See GET /api/v1/audit/security-events (admins of the tenant) or the topic for the rule, principal id, count and window.'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'security-alerts-incoming'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'IncomingMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                'security-alerts'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: [for group in securityActionGroups: {
      actionGroupId: group
    }]
  }
}

resource securityEvents 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-security-events'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Breach detection: security events'
    description: 'Breach detection logged findings in the last 5 minutes, by rule and tenant (bulk-read, failure-burst, bulk-export, refused-gdpr-request). Traces are sampled; the security-alerts metric alert is exact.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: securityEventsQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'findings'
          dimensions: [
            {
              name: 'rule'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: securityActionGroups
    }
  }
}

output actionGroupIds array = actionGroups
output securityActionGroupIds array = securityActionGroups
output alertRuleIds array = [
  relayFailures.id
  outboxLag.id
  securityAlertsTopic.id
  securityEvents.id
]
