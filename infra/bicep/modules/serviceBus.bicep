// Service Bus: the messaging the function app's triggers and its outbox relay use.
//   gdpr-requests           queue  erasure requests (CustomersApi); GDPRDataAnonymization receives
//   order-events            topic  order events (OrdersApi)
//     notifications         subscription of order-events, NotificationDispatch receives
//     payments              subscription of order-events, CancelledOrderRefund receives (refunds)
//     erp                   subscription of order-events, ErpGoodsMovement receives (goods
//                           issues and returns posted to the ERP)
//     shipping              subscription of order-events, ShippingLabel receives (labels)
//   payment-events          topic  payment events (PaymentsApi, PaymentWebhooks)
//     orders                subscription of payment-events, PaymentOrderFlow receives
//     notifications         subscription of payment-events, PaymentNotificationDispatch receives
//   notifications-outbound  queue  email/SMS requests (NotificationDispatch,
//                                  PaymentNotificationDispatch); the sender receives
//   security-alerts         topic  breach detection's findings (ids and counts only); no
//                                  subscription here: add one for your SIEM or ticketing
//                                  (alerts.bicep alerts on every message that arrives)
// Nothing is sent by an output binding: each message is an outbox record written with the change
// it announces, and OutboxRelay (a Cosmos DB change feed trigger) publishes it through the REST
// API with MessageId = the event id, so the entities the relay sends to detect duplicates.
// Entra ID only (local SAS auth off). Premium gets a private endpoint and no public access;
// Standard has no private endpoints, so it stays reachable publicly, Entra ID still required.

@description('Azure region.')
param location string

@description('Namespace name.')
param name string

@description('Tags applied to every resource.')
param tags object

@description('Standard (shared, no private endpoint) or Premium (dedicated, private endpoint).')
@allowed([
  'Standard'
  'Premium'
])
param skuName string

@description('Messaging units (Premium only: 1, 2, 4, 8 or 16).')
param premiumCapacity int = 1

@description('Spread a Premium namespace across availability zones (needs a region with zones).')
param zoneRedundant bool

@description('Deliveries before a message is dead-lettered (the host abandons a message on a failed invocation).')
param maxDeliveryCount int = 10

@description('Subnet for the private endpoint (Premium only).')
param privateEndpointSubnetId string

@description('Private DNS zone ids by purpose (network.bicep output).')
param dnsZoneIds object

@description('Log Analytics workspace for diagnostics.')
param logAnalyticsWorkspaceId string

var isPremium = skuName == 'Premium'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
    capacity: isPremium ? premiumCapacity : null
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: isPremium ? 'Disabled' : 'Enabled'
    zoneRedundant: isPremium && zoneRedundant
  }
}

// Duplicate detection (queues and topics only; Standard and Premium, not Basic; it can only be
// set when an entity is created) drops a message whose MessageId was seen within the window. The
// relay sends an outbox record again only when its batch is invoked again: a retry (function.json
// `retry`: exponential backoff, unlimited, at most 5 minutes apart), a lease taken over after a
// crash, or a host stopping mid-batch. One hour covers a retry streak well past the point where
// it is alerted (alerts.bicep: any failed OutboxRelay invocation within 5 minutes, outbox lag over
// 5 minutes); a resend after the window is a duplicate delivery, which consumers drop by event id
// (processed-event markers, 7 days). The window is the same on every entity the relay sends to.
var duplicateDetectionWindow = 'PT1H'

resource gdprRequests 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: 'gdpr-requests'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
    enablePartitioning: false
  }
}

resource orderEvents 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: 'order-events'
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    defaultMessageTimeToLive: 'P14D'
    enablePartitioning: false
    supportOrdering: true
  }
}

resource notificationsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: orderEvents
  name: 'notifications'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
  }
}

// Cancelled orders trigger refunds: the payments side receives order events here.
resource paymentsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: orderEvents
  name: 'payments'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
  }
}

// Shipped and returned orders post goods movements to the ERP: ErpGoodsMovement receives here.
resource erpSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: orderEvents
  name: 'erp'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
  }
}

// Shipped orders get their label: the shipping side receives order events here.
resource shippingSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: orderEvents
  name: 'shipping'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
  }
}

// Payment events (captured, refunded, ...), published by the outbox relay like order events, so
// with the same duplicate detection.
resource paymentEvents 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: 'payment-events'
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    defaultMessageTimeToLive: 'P14D'
    enablePartitioning: false
    supportOrdering: true
  }
}

// The order flow consumes captured and refunded payments.
resource paymentOrdersSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: paymentEvents
  name: 'orders'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
  }
}

// Notification dispatch tells the customer about their payment.
resource paymentNotificationsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: paymentEvents
  name: 'notifications'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
  }
}

resource notificationsOutbound 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: 'notifications-outbound'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: maxDeliveryCount
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P7D'
    requiresSession: false
    enablePartitioning: false
  }
}

// Breach detection's findings, published by the outbox relay like every message, so with the
// same duplicate detection.
resource securityAlerts 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: 'security-alerts'
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    defaultMessageTimeToLive: 'P14D'
    enablePartitioning: false
    supportOrdering: true
  }
}

module endpoint 'privateEndpoint.bicep' = if (isPremium) {
  name: 'pe-${name}-namespace'
  params: {
    location: location
    name: 'pe-${name}-namespace'
    tags: tags
    subnetId: privateEndpointSubnetId
    serviceId: namespace.id
    groupId: 'namespace'
    dnsZoneId: dnsZoneIds.serviceBus
  }
}

// preview API: Microsoft.Insights/diagnosticSettings has no newer version than 2021-05-01-preview, the first
// with categoryGroup and the one the Azure Verified Modules use; its only GA version (2016-09-01) predates them.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: namespace
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output id string = namespace.id
output name string = namespace.name
@description('Host name for ServiceBusConnection__fullyQualifiedNamespace.')
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
output gdprQueueName string = gdprRequests.name
output orderEventsTopicName string = orderEvents.name
output notificationsSubscriptionName string = notificationsSubscription.name
output outboundQueueName string = notificationsOutbound.name
output paymentsSubscriptionName string = paymentsSubscription.name
output erpSubscriptionName string = erpSubscription.name
output shippingSubscriptionName string = shippingSubscription.name
output paymentEventsTopicName string = paymentEvents.name
output securityAlertsTopicName string = securityAlerts.name
output paymentOrdersSubscriptionName string = paymentOrdersSubscription.name
output paymentNotificationsSubscriptionName string = paymentNotificationsSubscription.name
