// The function app: a Linux Elastic Premium plan and the custom-handler app on it.
//   - FUNCTIONS_WORKER_RUNTIME=custom, runtime ~4, the `handler` binary from the zip package
//     (WEBSITE_RUN_FROM_PACKAGE=1: the zip is mounted read-only, file modes kept).
//   - Outbound: regional VNet integration with all traffic routed through the VNet
//     (vnetRouteAllEnabled), so storage, Cosmos DB, Service Bus and Key Vault are reached over
//     their private endpoints, and everything bound for the internet (PayPal's REST API) leaves
//     through the integration subnet's NAT gateway, from its one static public IP (network.bicep).
//   - Inbound: a private endpoint (API Management reaches it over the VNet). The public site
//     denies everything; the SCM (deployment) site admits only `deployerIpRanges`.
//   - Runtime scale monitoring on: behind private networking the scale controller cannot see
//     Service Bus, so the runtime reports the queue/subscription depth itself.
//   - Every connection is identity-based except the Azure Files content share (key required):
//     host storage, Service Bus (triggers; the outbox relay's REST publishing) and Cosmos DB (the
//     outbox relay's change feed trigger), all with the user-assigned identity.
//
// App settings: `appSettings` below lists them; scripts/test-infra checks it against
// local.settings.example.json (scripts/lib/infra_checks.py holds the allow-lists).

@description('Azure region.')
param location string

@description('Resource name prefix, e.g. custplat-dev.')
param namePrefix string

@description('Function app name (globally unique: it is the host name).')
param name string

@description('Tags applied to every resource.')
param tags object

@description('Elastic Premium size.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param planSku string

@description('Always-ready instances (billed around the clock). Zone redundancy needs 3.')
@minValue(1)
@maxValue(20)
param minimumInstances int

@description('Most instances the plan bursts to.')
@minValue(1)
@maxValue(100)
param maximumBurst int

@description('Spread the plan across availability zones (minimum 3 instances).')
param zoneRedundant bool

@description('Resource id of the app\'s user-assigned identity (created, and given its roles, before the app: main.bicep).')
param userAssignedIdentityId string

@description('Client id of that identity (AZURE_CLIENT_ID, and the clientId of the identity-based connections).')
param userAssignedIdentityClientId string

@description('Public IPv4 ranges (CIDR) allowed to reach the SCM site for zip deployment. Empty: deploy from inside the VNet.')
param deployerIpRanges array

@description('Path the platform probes for instance health (anonymous HTTP function).')
param healthCheckPath string

@description('Subnet for outbound VNet integration.')
param functionSubnetId string

@description('Subnet for the inbound private endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone ids by purpose (network.bicep output).')
param dnsZoneIds object

@description('Log Analytics workspace for diagnostics.')
param logAnalyticsWorkspaceId string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Host storage account name (AzureWebJobsStorage and the content share).')
param hostStorageName string

@description('Content share name on the host storage account.')
param contentShareName string

@description('Service Bus namespace host name.')
param serviceBusNamespaceHost string

@description('SignalR Service endpoint (https://<name>.service.signalr.net): the SignalR bindings\' identity-based connection.')
param signalRServiceUri string

@description('Cosmos DB account endpoint.')
param cosmosEndpoint string

@description('Cosmos DB database name.')
param cosmosDatabaseName string

@description('Archive storage blob endpoint.')
param archiveBlobEndpoint string

@description('Archive container name.')
param archiveContainerName string

@description('Versionless Key Vault secret URI of the GDPR pseudonymisation key.')
param gdprKeySecretUri string

@description('PayPal: baseUrl (PAYPAL_BASE_URL) and the versionless Key Vault secret URIs clientIdSecretUri, clientSecretSecretUri, webhookIdsSecretUri.')
param paypal object

@description('ERP (SOAP): baseUrl (ERP_BASE_URL, empty for none), soapVersion, auth, username, passwordSecretUri (the versionless Key Vault secret URI of the password), tenants (ERP_TENANTS) and the schedules of the two ERP timers.')
param erp object

@description('Shipping carrier: baseUrl (CARRIER_BASE_URL, empty for none), apiKeySecretUri (the versionless Key Vault secret URI of the API key), trackingSchedule, fromAddress.')
param carrier object

@description('Token validation: issuers and audiences, and the claims holding the tenant id and the customer id.')
param auth object

@description('Cosmos DB, retention, job, outbox, erasure and HTTP tuning (see main.bicep for each value).')
param tuning object

var clientId = userAssignedIdentityClientId

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

var contentConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${hostStorage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${hostStorage.listKeys().keys[0].value}'

// One entry per setting. Keys the app reads come from local.settings.example.json; the others
// are the host's and the platform's.
var appSettings = [
  { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
  { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'custom' }
  { name: 'AzureWebJobsStorage__blobServiceUri', value: hostStorage.properties.primaryEndpoints.blob }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: hostStorage.properties.primaryEndpoints.queue }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: hostStorage.properties.primaryEndpoints.table }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING', value: contentConnectionString }
  { name: 'WEBSITE_CONTENTSHARE', value: contentShareName }
  { name: 'WEBSITE_SKIP_CONTENTSHARE_VALIDATION', value: '1' }
  { name: 'WEBSITE_RUN_FROM_PACKAGE', value: '1' }
  { name: 'SCM_DO_BUILD_DURING_DEPLOYMENT', value: 'false' }
  { name: 'ENABLE_ORYX_BUILD', value: 'false' }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=${clientId}' }
  // The Service Bus triggers' connection; the outbox relay (OutboxRelay) also reads the namespace
  // from it and publishes through the REST API with the identity of AZURE_CLIENT_ID.
  { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusNamespaceHost }
  { name: 'ServiceBusConnection__credential', value: 'managedidentity' }
  // The SignalR bindings' connection (NotificationsNegotiate, OutboxRelay), identity-based.
  { name: 'AzureSignalRConnectionString__serviceUri', value: signalRServiceUri }
  { name: 'AzureSignalRConnectionString__credential', value: 'managedidentity' }
  // The change feed trigger's connection (OutboxRelay's cosmosDBTrigger, connection
  // CosmosConnection): identity-based like ServiceBusConnection. The same account and identity
  // as the store; the lease container (`leases`) is reached through it too.
  { name: 'CosmosConnection__accountEndpoint', value: cosmosEndpoint }
  { name: 'CosmosConnection__credential', value: 'managedidentity' }
  { name: 'STORE', value: 'cosmos' }
  { name: 'COSMOS_ENDPOINT', value: cosmosEndpoint }
  { name: 'COSMOS_DATABASE', value: cosmosDatabaseName }
  { name: 'COSMOS_REGION', value: location } // preferred region: the account's, where the app runs
  { name: 'COSMOS_TIMEOUT_MS', value: string(tuning.cosmosTimeoutMs) }
  { name: 'COSMOS_THROTTLE_RETRIES', value: string(tuning.cosmosThrottleRetries) }
  { name: 'ARCHIVE', value: 'blob' }
  { name: 'ARCHIVE_BLOB_ENDPOINT', value: archiveBlobEndpoint }
  { name: 'ARCHIVE_CONTAINER', value: archiveContainerName }
  { name: 'AZURE_CLIENT_ID', value: clientId }
  { name: 'AUTH_ENTRA_ISSUER', value: auth.entraIssuer }
  { name: 'AUTH_ENTRA_AUDIENCE', value: auth.entraAudience }
  { name: 'AUTH_EXTERNAL_ISSUER', value: auth.externalIssuer }
  { name: 'AUTH_EXTERNAL_AUDIENCE', value: auth.externalAudience }
  { name: 'AUTH_TENANT_CLAIM', value: auth.tenantClaim }
  { name: 'AUTH_CUSTOMER_CLAIM', value: auth.customerClaim }
  { name: 'AUTH_KEY_REFETCH_SECONDS', value: '300' }
  { name: 'GDPR_PSEUDONYM_KEY', value: '@Microsoft.KeyVault(SecretUri=${gdprKeySecretUri})' }
  // PayPal REST (OAuth 2.0 client credentials): the credentials are Key Vault references, resolved
  // by the platform with the app identity (keyVaultReferenceIdentity), never values in settings.
  { name: 'PAYPAL_BASE_URL', value: paypal.baseUrl }
  { name: 'PAYPAL_CLIENT_ID', value: '@Microsoft.KeyVault(SecretUri=${paypal.clientIdSecretUri})' }
  { name: 'PAYPAL_CLIENT_SECRET', value: '@Microsoft.KeyVault(SecretUri=${paypal.clientSecretSecretUri})' }
  { name: 'PAYPAL_WEBHOOK_IDS', value: '@Microsoft.KeyVault(SecretUri=${paypal.webhookIdsSecretUri})' }
  { name: 'PAYPAL_WEBHOOK_TOLERANCE_SECONDS', value: '300' }
  { name: 'PAYPAL_TIMEOUT_SECONDS', value: '10' }
  { name: 'PAYPAL_BREAKER_OPEN_SECONDS', value: '30' }
  { name: 'PAYMENT_SETTLE_AFTER_SECONDS', value: '300' }
  // Breach detection's thresholds (README, "Breach detection"): per instance, per window.
  { name: 'SECURITY_WINDOW_SECONDS', value: '300' }
  { name: 'SECURITY_READS_ADMIN', value: '100' }
  { name: 'SECURITY_READS_CUSTOMER_SERVICE', value: '100' }
  { name: 'SECURITY_READS_ORDER_MANAGER', value: '50' }
  { name: 'SECURITY_FAILURES', value: '20' }
  { name: 'SECURITY_EXPORTS', value: '5' }
  // The legacy ERP (SOAP): the password is a Key Vault reference, like PayPal's credentials.
  { name: 'ERP_BASE_URL', value: erp.baseUrl }
  { name: 'ERP_SOAP_VERSION', value: erp.soapVersion }
  { name: 'ERP_AUTH', value: erp.auth }
  { name: 'ERP_USERNAME', value: erp.username }
  { name: 'ERP_PASSWORD', value: '@Microsoft.KeyVault(SecretUri=${erp.passwordSecretUri})' }
  { name: 'ERP_TIMEOUT_SECONDS', value: '30' }
  { name: 'ERP_BREAKER_OPEN_SECONDS', value: '30' }
  { name: 'ERP_TENANTS', value: erp.tenants }
  { name: 'ERP_STOCK_PAGE_SIZE', value: '200' }
  // The timers' function.json reads their schedules from these settings (%NAME%).
  { name: 'ERP_INVENTORY_SYNC_SCHEDULE', value: erp.inventorySyncSchedule }
  { name: 'ERP_PRODUCT_SYNC_SCHEDULE', value: erp.productSyncSchedule }
  // The shipping carrier (EasyPost): the API key is a Key Vault reference, like the ERP password.
  { name: 'CARRIER_BASE_URL', value: carrier.baseUrl }
  { name: 'CARRIER_API_KEY', value: '@Microsoft.KeyVault(SecretUri=${carrier.apiKeySecretUri})' }
  { name: 'CARRIER_TIMEOUT_SECONDS', value: '10' }
  { name: 'CARRIER_BREAKER_OPEN_SECONDS', value: '30' }
  { name: 'SHIPPING_FROM_ADDRESS', value: string(carrier.fromAddress) }
  { name: 'SHIPPING_ITEM_WEIGHT_OZ', value: '16' }
  { name: 'SHIPPING_RATES_CACHE_SECONDS', value: '300' }
  { name: 'SHIPPING_TRACKING_CACHE_SECONDS', value: '60' }
  { name: 'SHIPMENT_TRACKING_SCHEDULE', value: carrier.trackingSchedule }
  { name: 'RETENTION_NOTIFICATION_DAYS', value: string(tuning.retentionNotificationDays) }
  { name: 'RETENTION_READ_NOTIFICATION_DAYS', value: string(tuning.retentionReadNotificationDays) }
  { name: 'RETENTION_INACTIVE_CUSTOMER_YEARS', value: string(tuning.retentionInactiveCustomerYears) }
  { name: 'RETENTION_AUDIT_YEARS', value: string(tuning.retentionAuditYears) }
  { name: 'RETENTION_TENANT_OVERRIDES', value: string(tuning.retentionTenantOverrides) }
  { name: 'JOB_MAX_RUNTIME_SECONDS', value: string(tuning.jobMaxRuntimeSeconds) }
  { name: 'JOB_BATCH_SIZE', value: string(tuning.jobBatchSize) }
  { name: 'JOB_DRY_RUN', value: string(tuning.jobDryRun) }
  { name: 'OUTBOX_TTL_SECONDS', value: string(tuning.outboxTtlSeconds) }
  { name: 'OUTBOX_LAG_DEGRADED_SECONDS', value: string(tuning.outboxLagDegradedSeconds) }
  { name: 'ERASURE_REQUEUE_AFTER_MINUTES', value: string(tuning.erasureRequeueAfterMinutes) }
  { name: 'HTTP_BODY_LIMIT_BYTES', value: string(tuning.httpBodyLimitBytes) }
  { name: 'LOG_FORMAT', value: 'json' }
  { name: 'RUST_LOG', value: tuning.rustLog }
  { name: 'AzureWebJobsStorage__clientId', value: clientId }
  { name: 'ServiceBusConnection__clientId', value: clientId }
  { name: 'CosmosConnection__clientId', value: clientId }
  { name: 'AzureSignalRConnectionString__clientId', value: clientId }
]

var deployerRules = [for (cidr, i) in deployerIpRanges: {
  name: 'deployer-${i}'
  action: 'Allow'
  ipAddress: cidr
  priority: 100 + i
}]

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  // checkov:skip=CKV_AZURE_225: zoneRedundant is a parameter (true in prod.bicepparam); dev runs in one zone to save two always-ready instances.
  name: 'plan-${namePrefix}'
  location: location
  tags: tags
  kind: 'elastic'
  sku: {
    name: planSku
    tier: 'ElasticPremium'
    capacity: zoneRedundant ? max(minimumInstances, 3) : minimumInstances
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: maximumBurst
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  // checkov:skip=CKV_AZURE_222: Public network access is on only for the SCM site's deployer allow-list (deployerIpRanges); the main site's default action is Deny, callers come through the private endpoint.
  // checkov:skip=CKV_AZURE_17: API Management authenticates to the app with a function key over the private endpoint; client certificates would add nothing there.
  // checkov:skip=CKV_AZURE_212: Elastic Premium scales elastically (numberOfWorkers does not apply); always-ready instances are minimumInstances, 3 in prod with zone redundancy.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${userAssignedIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: empty(deployerIpRanges) ? 'Disabled' : 'Enabled'
    virtualNetworkSubnetId: functionSubnetId
    vnetRouteAllEnabled: true
    vnetContentShareEnabled: true
    keyVaultReferenceIdentity: userAssignedIdentityId
    siteConfig: {
      linuxFxVersion: ''
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      vnetRouteAllEnabled: true
      functionsRuntimeScaleMonitoringEnabled: true
      minimumElasticInstanceCount: minimumInstances
      preWarmedInstanceCount: 1
      functionAppScaleLimit: maximumBurst
      healthCheckPath: healthCheckPath
      httpLoggingEnabled: true
      detailedErrorLoggingEnabled: true
      requestTracingEnabled: true
      ipSecurityRestrictionsDefaultAction: 'Deny'
      ipSecurityRestrictions: []
      scmIpSecurityRestrictionsUseMain: false
      scmIpSecurityRestrictionsDefaultAction: 'Deny'
      scmIpSecurityRestrictions: deployerRules
      appSettings: appSettings
    }
  }
}

module endpoint 'privateEndpoint.bicep' = {
  name: 'pe-${name}-sites'
  params: {
    location: location
    name: 'pe-${name}-sites'
    tags: tags
    subnetId: privateEndpointSubnetId
    serviceId: site.id
    groupId: 'sites'
    dnsZoneId: dnsZoneIds.sites
  }
}

// preview API: Microsoft.Insights/diagnosticSettings has no newer version than 2021-05-01-preview, the first
// with categoryGroup and the one the Azure Verified Modules use; its only GA version (2016-09-01) predates them.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: site
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
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

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
