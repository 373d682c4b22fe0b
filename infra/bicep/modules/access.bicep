// The function app identity's role assignments, all of them in one place and each on the
// narrowest scope that works:
//   Cosmos DB       Built-in Data Contributor (data plane), on the account (see below): the store's
//                   containers and the outbox relay's change feed and `leases`
//   Service Bus     Data Receiver on gdpr-requests, order-events/notifications,
//                   order-events/payments, order-events/erp, payment-events/orders,
//                   payment-events/notifications;
//                   Data Sender on gdpr-requests, order-events, payment-events,
//                   notifications-outbound, security-alerts (the outbox relay publishes every message the app sends);
//                   optionally Data Owner on the trigger entities (see grantServiceBusScaleRead)
//   Archive blob    Storage Blob Data Contributor on the audit-archive container only
//   Host storage    Storage Blob Data Owner + Storage Table Data Contributor on the host account
//                   (the account holds nothing but host state)
//   Key Vault       Key Vault Secrets User on the GDPR pseudonymisation key secret and on the three
//                   PayPal secrets (paypal-client-id, paypal-client-secret, paypal-webhook-ids) only
//   App Insights    Monitoring Metrics Publisher (telemetry with Entra ID auth)
//
// principalId is the app's user-assigned identity, which exists before the app: main.bicep runs
// this module, then waits for the assignments to take effect (roleAssignmentIds feeds that wait),
// and only then creates the function app. The GDPR key secret is the keyVault module's output, so
// this module runs after that module has created the secret or confirmed that it exists; the same
// holds for the PayPal secrets.

@description('Object id of the function app\'s user-assigned identity (never read from the app: the roles must exist before it starts).')
param principalId string

@description('Cosmos DB account name.')
param cosmosAccountName string

@description('Cosmos DB database name.')
param cosmosDatabaseName string

@description('Service Bus namespace name.')
param serviceBusName string

@description('''Also grant Azure Service Bus Data Owner on the entities that trigger functions
(gdpr-requests, and the topics order-events and payment-events, whose subscriptions do).
Runtime-driven scaling reads queue and subscription depth through the management API, which
needs the Manage right; without it the app still processes messages, it just does not scale out
on backlog.''')
param grantServiceBusScaleRead bool

@description('Archive storage account name.')
param archiveStorageName string

@description('Archive container name.')
param archiveContainerName string

@description('Host storage account name.')
param hostStorageName string

@description('Key Vault name.')
param keyVaultName string

@description('Secret name of the GDPR pseudonymisation key (the keyVault module\'s output: the secret exists when this runs).')
param gdprKeySecretName string

@description('Secret name of the PayPal client id (the keyVault module\'s output: the secret exists when this runs).')
param paypalClientIdSecretName string

@description('Secret name of the PayPal client secret (the keyVault module\'s output: the secret exists when this runs).')
param paypalClientSecretSecretName string

@description('Secret name of the PayPal webhook ids (the keyVault module\'s output: the secret exists when this runs).')
param paypalWebhookIdsSecretName string

@description('Secret name of the ERP password; empty when the environment has no ERP (nothing granted).')
param erpPasswordSecretName string = ''

@description('Secret name of the carrier API key; empty when the environment has no carrier (nothing granted).')
param carrierApiKeySecretName string = ''

@description('Application Insights component name.')
param appInsightsName string

@description('SignalR Service the app negotiates with and sends through.')
param signalRName string

var roles = {
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  signalRAppServer: '420fcaa2-552c-430f-98ca-3264be4806c7'
}

// Cosmos DB data plane (its own RBAC system, not Microsoft.Authorization): Built-in Data
// Contributor reads and writes items in every container (tenantdata, jobs, and the change feed
// trigger's leases, whose checkpoints it writes) and reads the change feed, but cannot create
// databases or containers, so cosmos.bicep declares them.
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' existing = {
  name: cosmosAccountName
}

resource cosmosDatabaseAccess 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: cosmos
  name: guid(cosmos.id, cosmosDatabaseName, principalId, cosmosDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: principalId
    // Account scope: the SDK reads the account's metadata (regions, topology) when it connects,
    // which a database-scoped assignment does not cover.
    scope: cosmos.id
  }
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusName
}

resource gdprQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: 'gdpr-requests'
}

resource orderEvents 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = {
  parent: serviceBus
  name: 'order-events'
}

resource notificationsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = {
  parent: orderEvents
  name: 'notifications'
}

resource paymentsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = {
  parent: orderEvents
  name: 'payments'
}

resource erpSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = {
  parent: orderEvents
  name: 'erp'
}

resource shippingSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = {
  parent: orderEvents
  name: 'shipping'
}

resource paymentEvents 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = {
  parent: serviceBus
  name: 'payment-events'
}

resource paymentOrdersSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = {
  parent: paymentEvents
  name: 'orders'
}

resource paymentNotificationsSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = {
  parent: paymentEvents
  name: 'notifications'
}

resource securityAlerts 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = {
  parent: serviceBus
  name: 'security-alerts'
}

resource outboundQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: 'notifications-outbound'
}

// GDPRDataAnonymization is triggered by gdpr-requests.
resource gdprReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: gdprQueue
  name: guid(gdprQueue.id, principalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The outbox relay (OutboxRelay) sends erasure requests (CustomersApi's) to gdpr-requests.
resource gdprSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: gdprQueue
  name: guid(gdprQueue.id, principalId, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The outbox relay publishes order events (OrdersApi's) to order-events.
resource orderEventsSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: orderEvents
  name: guid(orderEvents.id, principalId, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// NotificationDispatch is triggered by order-events/notifications.
resource notificationsReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: notificationsSubscription
  name: guid(notificationsSubscription.id, principalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The payments side is triggered by order-events/payments (cancelled orders are refunded).
resource paymentsReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: paymentsSubscription
  name: guid(paymentsSubscription.id, principalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// ErpGoodsMovement is triggered by order-events/erp (goods issues and returns for the ERP).
resource erpReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: erpSubscription
  name: guid(erpSubscription.id, principalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The shipping side is triggered by order-events/shipping (shipped orders get their label).
resource shippingReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: shippingSubscription
  name: guid(shippingSubscription.id, principalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The outbox relay publishes payment events (captured, refunded) to payment-events.
resource paymentEventsSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: paymentEvents
  name: guid(paymentEvents.id, principalId, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The order flow is triggered by payment-events/orders.
resource paymentOrdersReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: paymentOrdersSubscription
  name: guid(paymentOrdersSubscription.id, principalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Notification dispatch is triggered by payment-events/notifications.
resource paymentNotificationsReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: paymentNotificationsSubscription
  name: guid(paymentNotificationsSubscription.id, principalId, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The outbox relay sends email/SMS requests (NotificationDispatch's) to notifications-outbound.
resource outboundSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: outboundQueue
  name: guid(outboundQueue.id, principalId, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The outbox relay publishes breach detection's findings to security-alerts.
resource securityAlertsSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: securityAlerts
  name: guid(securityAlerts.id, principalId, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource gdprScaleRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantServiceBusScaleRead) {
  scope: gdprQueue
  name: guid(gdprQueue.id, principalId, roles.serviceBusDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource orderEventsScaleRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantServiceBusScaleRead) {
  scope: orderEvents
  name: guid(orderEvents.id, principalId, roles.serviceBusDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource paymentEventsScaleRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantServiceBusScaleRead) {
  scope: paymentEvents
  name: guid(paymentEvents.id, principalId, roles.serviceBusDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource archiveStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: archiveStorageName
}

resource archiveBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: archiveStorage
  name: 'default'
}

resource archiveContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: archiveBlobService
  name: archiveContainerName
}

resource archiveWrite 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: archiveContainer
  name: guid(archiveContainer.id, principalId, roles.storageBlobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

// The Functions host keeps leases, timer schedules and its keys in blobs.
resource hostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hostStorage
  name: guid(hostStorage.id, principalId, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// ... and its diagnostic events in a table.
resource hostTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: hostStorage
  name: guid(hostStorage.id, principalId, roles.storageTableDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource gdprKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: gdprKeySecretName
}

resource gdprKeyRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: gdprKeySecret
  name: guid(gdprKeySecret.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource paypalClientIdSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: paypalClientIdSecretName
}

resource paypalClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: paypalClientSecretSecretName
}

resource paypalWebhookIdsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: paypalWebhookIdsSecretName
}

// PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET and PAYPAL_WEBHOOK_IDS are Key Vault references.
resource paypalClientIdRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: paypalClientIdSecret
  name: guid(paypalClientIdSecret.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource paypalClientSecretRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: paypalClientSecretSecret
  name: guid(paypalClientSecretSecret.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource paypalWebhookIdsRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: paypalWebhookIdsSecret
  name: guid(paypalWebhookIdsSecret.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// ERP_PASSWORD is a Key Vault reference; granted only where an ERP is configured.
resource erpPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (!empty(erpPasswordSecretName)) {
  parent: vault
  name: erpPasswordSecretName
}

resource erpPasswordRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(erpPasswordSecretName)) {
  scope: erpPasswordSecret
  name: guid(erpPasswordSecret.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// CARRIER_API_KEY is a Key Vault reference; granted only where a carrier is configured.
resource carrierApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (!empty(carrierApiKeySecretName)) {
  parent: vault
  name: carrierApiKeySecretName
}

resource carrierApiKeyRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(carrierApiKeySecretName)) {
  scope: carrierApiKeySecret
  name: guid(carrierApiKeySecret.id, principalId, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource telemetryPublish 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: appInsights
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Ids of the role assignments made here; main.bicep waits for them to take effect (rolePropagation.bicep) and waits again when they change.')
output roleAssignmentIds array = concat([
  cosmosDatabaseAccess.id
  gdprReceive.id
  gdprSend.id
  orderEventsSend.id
  notificationsReceive.id
  paymentsReceive.id
  shippingReceive.id
  paymentEventsSend.id
  paymentOrdersReceive.id
  paymentNotificationsReceive.id
  outboundSend.id
  securityAlertsSend.id
  archiveWrite.id
  hostBlobs.id
  hostTables.id
  gdprKeyRead.id
  paypalClientIdRead.id
  paypalClientSecretRead.id
  paypalWebhookIdsRead.id
  telemetryPublish.id
], grantServiceBusScaleRead ? [
  gdprScaleRead.id
  orderEventsScaleRead.id
  paymentEventsScaleRead.id
] : [], empty(erpPasswordSecretName) ? [] : [
  erpPasswordRead.id
], empty(carrierApiKeySecretName) ? [] : [
  carrierApiKeyRead.id
])

// SignalR App Server on the SignalR Service: the signalRConnectionInfo binding mints client
// tokens and the signalR output sends messages and group actions (local auth is disabled).
resource signalR 'Microsoft.SignalRService/signalR@2024-03-01' existing = {
  name: signalRName
}

resource signalRAppServer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: signalR
  name: guid(signalR.id, principalId, roles.signalRAppServer)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.signalRAppServer)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
