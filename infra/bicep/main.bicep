// Everything the platform needs in Azure, in one resource group:
//   network        VNet, subnets (function app, API Management, private endpoints), NSGs, private DNS,
//                  the NAT gateway (static public IP) the function app's outbound calls leave from
//   monitoring     Log Analytics + Application Insights
//   alerts         log alerts on the outbox relay (failures, lag), alerts on breach detection's
//                  findings (security-alerts), and their action groups
//   hostStorage    the Functions host's storage account and Premium content share
//   archiveStorage the audit archive (versioning, immutability, lifecycle)
//   cosmos         Cosmos DB account, the `platform` database and its containers
//   serviceBus     gdpr-requests, order-events/{notifications,payments,erp},
//                  payment-events/{orders,notifications}, notifications-outbound,
//                  security-alerts
//   signalR        SignalR Service (Serverless, local auth off, private endpoint) for live pushes
//   keyVault       RBAC-mode vault: the GDPR pseudonymisation key, the PayPal credentials, the
//                  function key for APIM
//   access         the app identity's least-privilege role assignments
//   appRoles...    a wait until those roles have taken effect (rolePropagation.bicep)
//   functionApp    Linux Elastic Premium plan + the custom-handler function app
//   apim           API Management: external and internal APIs, products, policies
//
// Order on a fresh resource group (one run, nothing to repeat): the app's user-assigned identity
// exists first, `access` gives it its roles (the principal id comes from the identity, never from
// the app), `appRolesPropagated` waits until Azure RBAC has taken them up, and only then is the
// function app created: its host starts with the storage, Service Bus and Key Vault access it
// needs, so it can write its keys and resolve its Key Vault reference. `apim` reads the function
// key (listKeys) after all of that, and inside it the Key Vault named value waits for API
// Management's own secret-reader role the same way. scripts/test-infra checks this order.
//
// Deploy with scripts/deploy (it shows the what-if first). Parameters per environment are in
// dev.bicepparam, staging.bicepparam and prod.bicepparam; tenant-specific values come from
// environment variables there, so the files hold no tenant ids.

targetScope = 'resourceGroup'

@description('Environment name, part of every resource name.')
@allowed([
  'dev'
  'staging'
  'prod'
])
param environmentName string

@description('Azure region of every resource (the resource group\'s by default).')
param location string = resourceGroup().location

@description('Short name of the workload, part of every resource name (lowercase letters and digits).')
@minLength(3)
@maxLength(10)
param baseName string = 'custplat'

@description('Tags applied to every resource.')
param tags object = {}

// ---- Functions Premium ----------------------------------------------------------------------

@description('SignalR Service units (Standard_S1; 1 unit holds 1,000 concurrent client connections).')
@minValue(1)
param signalRCapacity int = 1

@description('Elastic Premium size.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param planSku string = 'EP1'

@description('Always-ready instances (billed around the clock).')
@minValue(1)
@maxValue(20)
param minimumInstances int = 1

@description('Most instances the plan bursts to.')
@minValue(1)
@maxValue(100)
param maximumBurst int = 10

@description('Availability-zone redundancy for the plan, Cosmos DB and a Premium Service Bus namespace (needs a region with zones; the plan then keeps at least 3 instances). Storage redundancy is its SKU.')
param zoneRedundant bool = false

@description('Seconds to wait after new role assignments before what needs them runs (Azure RBAC takes up to about 10 minutes to apply a new assignment everywhere). 0: no wait. The wait runs again only when the assignments change or after the wait record expires (26 hours).')
@minValue(0)
@maxValue(1800)
param rolePropagationSeconds int = 300

@description('Public IPv4 CIDR ranges allowed to reach the function app\'s SCM site for zip deployment (your workstation or CI runner). Empty: deploy from inside the VNet.')
param deployerIpRanges array = []

@description('Path the platform probes for instance health.')
param healthCheckPath string = '/api/health/live'

// ---- Network --------------------------------------------------------------------------------

@description('VNet address space.')
param vnetAddressPrefix string = '10.20.0.0/16'

@description('Function app integration subnet.')
param functionSubnetPrefix string = '10.20.1.0/24'

@description('API Management integration subnet.')
param apimSubnetPrefix string = '10.20.2.0/24'

@description('Private endpoint subnet.')
param privateEndpointSubnetPrefix string = '10.20.3.0/24'

// ---- Data -----------------------------------------------------------------------------------

@description('Cosmos DB autoscale ceiling (RU/s) shared by the database\'s containers.')
@minValue(1000)
param cosmosMaxThroughput int = 1000

@description('Cosmos DB continuous backup window.')
@allowed([
  'Continuous7Days'
  'Continuous30Days'
])
param cosmosBackupTier string = 'Continuous7Days'

@description('Host storage replication.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param hostStorageSku string = 'Standard_LRS'

@description('Days an archived audit blob stays immutable (3650 = RETENTION_AUDIT_YEARS of 10).')
@minValue(1)
@maxValue(146000)
param archiveImmutabilityDays int = 3650

@description('Archive immutability policy state. Locked is irreversible: lock once the retention is confirmed.')
@allowed([
  'Unlocked'
  'Locked'
])
param archiveImmutabilityState string = 'Unlocked'

// ---- Messaging ------------------------------------------------------------------------------

@description('Service Bus tier. Premium gets a private endpoint and no public access.')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Service Bus Premium messaging units.')
param serviceBusPremiumCapacity int = 1

@description('Grant Service Bus Data Owner on the trigger entities so runtime scaling can read their depth (see access.bicep).')
param grantServiceBusScaleRead bool = true

// ---- Monitoring -----------------------------------------------------------------------------

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Log Analytics daily ingestion cap in GB (-1 = none).')
param logDailyQuotaGb int = 5

// The alert rules (alerts.bicep) exist whatever these say; these only decide who is told.
@description('E-mail address told when an alert fires (an action group with this receiver is created). Empty: none.')
param alertEmailAddress string = ''

@description('Resource id of an existing action group (on-call, Teams, ITSM) the alerts notify as well. Empty: none.')
param alertActionGroupId string = ''

@description('E-mail address told when breach detection raises a finding (the data-protection officer or a security mailbox). Empty: only alertActionGroupId is told.')
param securityAlertEmailAddress string = ''

// ---- Identity and tokens (app settings AUTH_*, APIM validate-jwt) ---------------------------

@description('Entra ID (employees) token issuer, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0.')
param authEntraIssuer string

@description('Entra ID (employees) token audience: the API app registration\'s client id or App ID URI.')
param authEntraAudience string

@description('Entra External ID (clients) token issuer, e.g. https://<tenant-id>.ciamlogin.com/<tenant-id>/v2.0.')
param authExternalIssuer string

@description('Entra External ID (clients) token audience.')
param authExternalAudience string

@description('Token claim that holds the platform tenant id.')
param authTenantClaim string = 'tenant_id'

@description('Token claim (External ID tokens) that holds the customer id of a client caller.')
param authCustomerClaim string = 'extension_customerId'

@description('GDPR pseudonymisation key. Empty keeps the existing Key Vault secret, which must then exist: the deployment stops at the keyVault module (ResourceNotFound, secrets/gdpr-pseudonym-key) before anything uses it. scripts/deploy passes a generated key when the secret does not exist, and otherwise only with --rotate-gdpr-key.')
@secure()
param gdprPseudonymKey string = ''

@description('Changes the Key Vault name (letters and digits). Empty: the default name. A deleted vault keeps its name for 90 days (purge protection), so to rebuild an environment with a brand-new vault within that time, set a new salt; or leave it and let scripts/deploy recover the deleted vault (keyVaultCreateMode).')
@maxLength(12)
param keyVaultNameSalt string = ''

@description('default: create or update the vault. recover: recover the soft-deleted vault of the same name (with its secrets), which scripts/deploy selects when this resource group held one.')
@allowed([
  'default'
  'recover'
])
param keyVaultCreateMode string = 'default'

// ---- Payments (PayPal REST, OAuth 2.0 client credentials) -----------------------------------
// The three credentials are Key Vault secrets the app reads through Key Vault references
// (PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET, PAYPAL_WEBHOOK_IDS). No .bicepparam file sets them and
// none has a default here: they are set out-of-band (see keyVault.bicep), and an empty value keeps
// the secret in the vault, which must then exist (the deployment stops at the keyVault module,
// ResourceNotFound naming secrets/paypal-..., before anything uses it).

@description('PayPal REST API base URL (PAYPAL_BASE_URL): the sandbox in dev and staging, live in prod.')
@allowed([
  'https://api-m.sandbox.paypal.com'
  'https://api-m.paypal.com'
])
param paypalBaseUrl string

@description('PayPal REST app client id. Empty keeps the existing Key Vault secret paypal-client-id, which must then exist.')
@secure()
param paypalClientId string = ''

@description('PayPal REST app client secret. Empty keeps the existing Key Vault secret paypal-client-secret, which must then exist.')
@secure()
param paypalClientSecret string = ''

@description('PayPal webhook ids, comma-separated (two while a webhook is replaced). Empty keeps the existing Key Vault secret paypal-webhook-ids, which must then exist.')
@secure()
param paypalWebhookIds string = ''

// ---- Legacy ERP (SOAP; ERP_* app settings) --------------------------------------------------
// The password is a Key Vault secret (erp-password) the app reads through a Key Vault reference,
// set out-of-band like the PayPal credentials or passed as erpPassword. Without erpBaseUrl the
// environment has no ERP: the app leaves the ERP client unconfigured and nothing needs the secret.

@description('The ERP SOAP service endpoint (ERP_BASE_URL, https; the WSDL\'s soap:address). Empty: no ERP in this environment.')
param erpBaseUrl string = ''

@description('The SOAP version the ERP speaks (ERP_SOAP_VERSION).')
@allowed([
  '1.1'
  '1.2'
])
param erpSoapVersion string = '1.1'

@description('How the app authenticates to the ERP (ERP_AUTH): HTTP Basic, or a WS-Security UsernameToken.')
@allowed([
  'basic'
  'wsse'
])
param erpAuth string = 'basic'

@description('The ERP user name of the app (ERP_USERNAME).')
param erpUsername string = ''

@description('The ERP password. Empty keeps the existing Key Vault secret erp-password, which must then exist when erpBaseUrl is set.')
@secure()
param erpPassword string = ''

@description('The tenants whose catalogue the ERP feeds (ERP_TENANTS, comma-separated tenant ids). Empty: the ERP syncs link no catalogue.')
param erpTenants string = ''

@description('NCRONTAB schedule (UTC) of ErpInventorySync (ERP_INVENTORY_SYNC_SCHEDULE): stock changes from the ERP.')
param erpInventorySyncSchedule string = '0 */15 * * * *'

@description('NCRONTAB schedule (UTC) of ErpProductSync (ERP_PRODUCT_SYNC_SCHEDULE): the ERP\'s product master data, nightly.')
param erpProductSyncSchedule string = '0 45 0 * * *'

// ---- Shipping carrier (EasyPost REST API; CARRIER_*, SHIPPING_*, SHIPMENT_TRACKING_SCHEDULE) ----
// The API key is a Key Vault secret (carrier-api-key) the app reads through a Key Vault
// reference, set out-of-band like the PayPal credentials or passed as carrierApiKey. Without
// carrierBaseUrl the environment has no carrier: rates, labels and tracking answer 503.

@description('The carrier API base URL (CARRIER_BASE_URL): https://api.easypost.com (the key decides test or production mode). Empty: no carrier in this environment.')
param carrierBaseUrl string = ''

@description('The carrier API key. Empty keeps the existing Key Vault secret carrier-api-key, which must then exist when carrierBaseUrl is set.')
@secure()
param carrierApiKey string = ''

@description('NCRONTAB schedule of the ShipmentTracking timer (SHIPMENT_TRACKING_SCHEDULE).')
param shipmentTrackingSchedule string = '0 */10 * * * *'

@description('Where parcels leave from (SHIPPING_FROM_ADDRESS): name, line1, city, postalCode, country.')
param shippingFromAddress object = {
  name: 'Order fulfilment'
  line1: '1 Warehouse Way'
  city: 'Berlin'
  postalCode: '10115'
  country: 'DE'
}

// ---- App tuning (app settings COSMOS_*, RETENTION_*, JOB_*, OUTBOX_*, ERASURE_*, HTTP_BODY_LIMIT_BYTES, RUST_LOG)

@description('Upper bound of one Cosmos DB call, retries included, in milliseconds.')
@minValue(100)
@maxValue(120000)
param cosmosTimeoutMs int = 10000

@description('Retries of a throttled (429) Cosmos DB call, each after the server\'s retry-after.')
@minValue(0)
@maxValue(50)
param cosmosThrottleRetries int = 5

@description('Days notifications are kept.')
param retentionNotificationDays int = 90

@description('Days read notifications are kept.')
param retentionReadNotificationDays int = 30

@description('Years after which an inactive customer is anonymised.')
param retentionInactiveCustomerYears int = 7

@description('Years audit entries are kept.')
param retentionAuditYears int = 10

@description('Per-tenant retention overrides (JSON object keyed by tenant id).')
param retentionTenantOverrides object = {}

@description('Seconds a housekeeping job runs before it checkpoints and stops (below host.json functionTimeout).')
param jobMaxRuntimeSeconds int = 240

@description('Items a housekeeping job handles per batch.')
param jobBatchSize int = 5000

@description('Housekeeping jobs report what they would do without doing it.')
param jobDryRun bool = false

@description('''Seconds an outbox record lives in Cosmos DB (its `ttl`) before Cosmos DB deletes it, sent or
not: the relay must have published it by then (the outbox-lag alert fires after minutes). At most
7 days: a record the relay re-reads (a lease reset, startFromBeginning) must still find the
consumers' processed-event markers, which live 7 days (PROCESSED_EVENT_TTL in
shared/src/jobs/maintenance.rs).''')
@minValue(86400)
@maxValue(604800)
param outboxTtlSeconds int = 604800

@description('Relay lag (age of the oldest unsent outbox record) in seconds above which /api/health/ready reports the outbox as degraded.')
@minValue(1)
param outboxLagDegradedSeconds int = 60

@description('Minutes after which DatabaseMaintenance announces again a GDPR erasure request that is still only accepted (not yet processed).')
@minValue(1)
param erasureRequeueAfterMinutes int = 30

@description('Largest HTTP request body the handler accepts, in bytes.')
param httpBodyLimitBytes int = 262144

@description('Log filter for the handler (tracing EnvFilter syntax).')
param rustLog string = 'info'

// ---- API Management -------------------------------------------------------------------------

@description('API Management tier.')
@allowed([
  'StandardV2'
  'PremiumV2'
])
param apimSku string = 'StandardV2'

@description('API Management scale units.')
@minValue(1)
param apimCapacity int = 1

@description('API Management publisher e-mail.')
param apimPublisherEmail string

@description('API Management publisher organisation.')
param apimPublisherName string = 'Customer Platform'

@description('Origins of the client app (CORS on the external API).')
@minLength(1)
param externalClientOrigins array

@description('IPv4 addresses or ranges (a.b.c.d or a.b.c.d-e.f.g.h) allowed on /admin routes of the internal API.')
@minLength(1)
param adminIpRanges array

// ---- Names ----------------------------------------------------------------------------------

var namePrefix = '${baseName}-${environmentName}'
var suffix = take(uniqueString(resourceGroup().id, baseName, environmentName), 6)
var compactBase = take(toLower(baseName), 8)
// Vault names are at most 24 characters: 'staging' is shortened there (dev and prod keep theirs).
var vaultEnvironment = environmentName == 'staging' ? 'stg' : environmentName
var vaultSuffix = empty(keyVaultNameSalt) ? suffix : take(uniqueString(resourceGroup().id, baseName, environmentName, keyVaultNameSalt), 6)
var names = {
  identity: 'id-${namePrefix}'
  functionApp: 'func-${namePrefix}-${suffix}'
  hostStorage: 'st${compactBase}${environmentName}${suffix}'
  archiveStorage: 'sa${compactBase}${environmentName}${suffix}'
  cosmos: 'cosmos-${namePrefix}-${suffix}'
  serviceBus: 'sb-${namePrefix}-${suffix}'
  keyVault: 'kv-${compactBase}-${vaultEnvironment}-${vaultSuffix}'
  apim: 'apim-${namePrefix}-${suffix}'
  signalR: 'sigr-${namePrefix}-${suffix}'
  contentShare: 'func-${namePrefix}-content'
}
var cosmosDatabaseName = 'platform'
var archiveContainerName = 'audit-archive'
var gdprKeySecretName = 'gdpr-pseudonym-key'
var functionKeySecretName = 'function-app-apim-key'
var paypalSecretNames = {
  clientId: 'paypal-client-id'
  clientSecret: 'paypal-client-secret'
  webhookIds: 'paypal-webhook-ids'
}
var auth = {
  entraIssuer: authEntraIssuer
  entraAudience: authEntraAudience
  externalIssuer: authExternalIssuer
  externalAudience: authExternalAudience
  tenantClaim: authTenantClaim
  customerClaim: authCustomerClaim
}

// ---- Resources ------------------------------------------------------------------------------

// The app's identity exists before the app, so its roles can too (a system-assigned identity would
// only exist once the app has started without them).
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: tags
}

module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    location: location
    namePrefix: namePrefix
    tags: tags
    addressPrefix: vnetAddressPrefix
    functionSubnetPrefix: functionSubnetPrefix
    apimSubnetPrefix: apimSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    namePrefix: namePrefix
    tags: tags
    retentionInDays: logRetentionDays
    dailyQuotaGb: logDailyQuotaGb
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    namePrefix: namePrefix
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmailAddress: alertEmailAddress
    alertActionGroupId: alertActionGroupId
    securityAlertEmailAddress: securityAlertEmailAddress
    serviceBusNamespaceId: serviceBus.outputs.id
  }
}

module hostStorage 'modules/hostStorage.bicep' = {
  name: 'hostStorage'
  params: {
    location: location
    name: names.hostStorage
    tags: tags
    skuName: hostStorageSku
    contentShareName: names.contentShare
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module archiveStorage 'modules/archiveStorage.bicep' = {
  name: 'archiveStorage'
  params: {
    location: location
    name: names.archiveStorage
    tags: tags
    containerName: archiveContainerName
    immutabilityDays: archiveImmutabilityDays
    immutabilityState: archiveImmutabilityState
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    location: location
    name: names.cosmos
    tags: tags
    databaseName: cosmosDatabaseName
    maxThroughput: cosmosMaxThroughput
    backupTier: cosmosBackupTier
    zoneRedundant: zoneRedundant
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module serviceBus 'modules/serviceBus.bicep' = {
  name: 'serviceBus'
  params: {
    location: location
    name: names.serviceBus
    tags: tags
    skuName: serviceBusSku
    premiumCapacity: serviceBusPremiumCapacity
    zoneRedundant: zoneRedundant
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module signalR 'modules/signalR.bicep' = {
  name: 'signalR'
  params: {
    location: location
    name: names.signalR
    tags: tags
    capacity: signalRCapacity
    allowedOrigins: externalClientOrigins
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
  }
}

module keyVault 'modules/keyVault.bicep' = {
  name: 'keyVault'
  params: {
    location: location
    name: names.keyVault
    tags: union(tags, {
      keyVaultNameSalt: keyVaultNameSalt
    })
    createMode: keyVaultCreateMode
    gdprKeySecretName: gdprKeySecretName
    gdprPseudonymKey: gdprPseudonymKey
    paypalClientIdSecretName: paypalSecretNames.clientId
    paypalClientSecretSecretName: paypalSecretNames.clientSecret
    paypalWebhookIdsSecretName: paypalSecretNames.webhookIds
    paypalClientId: paypalClientId
    paypalClientSecret: paypalClientSecret
    paypalWebhookIds: paypalWebhookIds
    erpPasswordSecretName: 'erp-password'
    erpPassword: erpPassword
    erpConfigured: !empty(erpBaseUrl)
    carrierApiKeySecretName: 'carrier-api-key'
    carrierApiKey: carrierApiKey
    carrierConfigured: !empty(carrierBaseUrl)
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module access 'modules/access.bicep' = {
  name: 'access'
  params: {
    principalId: appIdentity.properties.principalId
    cosmosAccountName: cosmos.outputs.name
    cosmosDatabaseName: cosmos.outputs.databaseName
    serviceBusName: serviceBus.outputs.name
    grantServiceBusScaleRead: grantServiceBusScaleRead
    archiveStorageName: archiveStorage.outputs.name
    archiveContainerName: archiveStorage.outputs.containerName
    hostStorageName: hostStorage.outputs.name
    keyVaultName: keyVault.outputs.name
    gdprKeySecretName: keyVault.outputs.gdprKeySecretName
    paypalClientIdSecretName: keyVault.outputs.paypalClientIdSecretName
    paypalClientSecretSecretName: keyVault.outputs.paypalClientSecretSecretName
    paypalWebhookIdsSecretName: keyVault.outputs.paypalWebhookIdsSecretName
    erpPasswordSecretName: empty(erpBaseUrl) ? '' : keyVault.outputs.erpPasswordSecretName
    carrierApiKeySecretName: empty(carrierBaseUrl) ? '' : keyVault.outputs.carrierApiKeySecretName
    appInsightsName: monitoring.outputs.appInsightsName
    signalRName: signalR.outputs.name
  }
}

// Azure RBAC takes minutes to apply new assignments; the app must not start before.
module appRolesPropagated 'modules/rolePropagation.bicep' = if (rolePropagationSeconds > 0) {
  name: 'appRolesPropagated'
  params: {
    location: location
    name: 'wait-${namePrefix}-app-roles'
    tags: tags
    seconds: max(rolePropagationSeconds, 1)
    trigger: string(access.outputs.roleAssignmentIds)
  }
}

module functionApp 'modules/functionApp.bicep' = {
  name: 'functionApp'
  params: {
    location: location
    namePrefix: namePrefix
    name: names.functionApp
    tags: tags
    planSku: planSku
    minimumInstances: minimumInstances
    maximumBurst: maximumBurst
    zoneRedundant: zoneRedundant
    userAssignedIdentityId: appIdentity.id
    userAssignedIdentityClientId: appIdentity.properties.clientId
    deployerIpRanges: deployerIpRanges
    healthCheckPath: healthCheckPath
    functionSubnetId: network.outputs.functionSubnetId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    dnsZoneIds: network.outputs.dnsZoneIds
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    hostStorageName: hostStorage.outputs.name
    contentShareName: hostStorage.outputs.contentShareName
    serviceBusNamespaceHost: serviceBus.outputs.fullyQualifiedNamespace
    signalRServiceUri: signalR.outputs.serviceUri
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    archiveBlobEndpoint: archiveStorage.outputs.blobEndpoint
    archiveContainerName: archiveStorage.outputs.containerName
    gdprKeySecretUri: keyVault.outputs.gdprKeySecretUri
    paypal: {
      baseUrl: paypalBaseUrl
      clientIdSecretUri: keyVault.outputs.paypalClientIdSecretUri
      clientSecretSecretUri: keyVault.outputs.paypalClientSecretSecretUri
      webhookIdsSecretUri: keyVault.outputs.paypalWebhookIdsSecretUri
    }
    erp: {
      baseUrl: erpBaseUrl
      soapVersion: erpSoapVersion
      auth: erpAuth
      username: erpUsername
      passwordSecretUri: keyVault.outputs.erpPasswordSecretUri
      tenants: erpTenants
      inventorySyncSchedule: erpInventorySyncSchedule
      productSyncSchedule: erpProductSyncSchedule
    }
    carrier: {
      baseUrl: carrierBaseUrl
      apiKeySecretUri: keyVault.outputs.carrierApiKeySecretUri
      trackingSchedule: shipmentTrackingSchedule
      fromAddress: shippingFromAddress
    }
    auth: auth
    tuning: {
      cosmosTimeoutMs: cosmosTimeoutMs
      cosmosThrottleRetries: cosmosThrottleRetries
      retentionNotificationDays: retentionNotificationDays
      retentionReadNotificationDays: retentionReadNotificationDays
      retentionInactiveCustomerYears: retentionInactiveCustomerYears
      retentionAuditYears: retentionAuditYears
      retentionTenantOverrides: retentionTenantOverrides
      jobMaxRuntimeSeconds: jobMaxRuntimeSeconds
      jobBatchSize: jobBatchSize
      jobDryRun: jobDryRun
      outboxTtlSeconds: outboxTtlSeconds
      outboxLagDegradedSeconds: outboxLagDegradedSeconds
      erasureRequeueAfterMinutes: erasureRequeueAfterMinutes
      httpBodyLimitBytes: httpBodyLimitBytes
      rustLog: rustLog
    }
  }
  // The host must find its roles in place when it starts (storage for its keys and leases,
  // Key Vault for GDPR_PSEUDONYM_KEY, Service Bus for its triggers).
  dependsOn: [
    access
    appRolesPropagated
  ]
}

module apim 'modules/apim.bicep' = {
  name: 'apim'
  params: {
    location: location
    name: names.apim
    tags: tags
    skuName: apimSku
    capacity: apimCapacity
    publisherEmail: apimPublisherEmail
    publisherName: apimPublisherName
    apimSubnetId: network.outputs.apimSubnetId
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    functionAppName: functionApp.outputs.name
    keyVaultName: keyVault.outputs.name
    functionKeySecretName: functionKeySecretName
    rolePropagationSeconds: rolePropagationSeconds
    auth: auth
    externalClientOrigins: externalClientOrigins
    adminIpRanges: adminIpRanges
  }
  // listKeys needs a running host that can write its keys: the app's roles, in effect.
  dependsOn: [
    access
    appRolesPropagated
  ]
}

// ---- Outputs (scripts/deploy and scripts/smoke read these) ----------------------------------

output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output keyVaultName string = keyVault.outputs.name
output gdprKeySecretName string = gdprKeySecretName
output apimName string = apim.outputs.name
output externalApiUrl string = apim.outputs.externalApiUrl
output internalApiUrl string = apim.outputs.internalApiUrl
output cosmosAccountName string = cosmos.outputs.name
output serviceBusNamespace string = serviceBus.outputs.name
@description('The static public IP the function app\'s outbound calls leave from (NAT gateway on its integration subnet): the address to allow-list at PayPal or any gateway in front of it.')
output outboundIpAddress string = network.outputs.natPublicIpAddress
