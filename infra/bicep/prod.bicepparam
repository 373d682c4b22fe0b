// Production: zone-redundant where the service offers it, three always-ready instances, Service
// Bus Premium behind a private endpoint, 30-day Cosmos DB point-in-time restore, ten years of
// audit immutability.
// Tenant-specific values come from environment variables (see README.md (Deploying)); scripts/deploy
// checks they are set before it calls Azure.
using 'main.bicep'

param environmentName = 'prod'
param tags = {
  workload: 'customer-platform'
  environment: 'prod'
}

// Functions Premium: three always-ready EP1 instances (one per zone), bursting to 20.
param planSku = 'EP1'
param minimumInstances = 3
param maximumBurst = 20
param zoneRedundant = true

// Data
param hostStorageSku = 'Standard_ZRS'
param cosmosMaxThroughput = 4000
param cosmosBackupTier = 'Continuous30Days'
param archiveImmutabilityDays = 3650
// Switch to 'Locked' once the retention period is confirmed: locking cannot be undone.
param archiveImmutabilityState = 'Unlocked'

// Messaging
param serviceBusSku = 'Premium'
param serviceBusPremiumCapacity = 1

// Monitoring
param logRetentionDays = 90
param logDailyQuotaGb = 20

// API Management
param apimSku = 'StandardV2'
param apimCapacity = 1
param apimPublisherEmail = readEnvironmentVariable('APIM_PUBLISHER_EMAIL')
param externalClientOrigins = split(readEnvironmentVariable('CLIENT_ORIGINS'), ',')
param adminIpRanges = split(readEnvironmentVariable('ADMIN_IP_RANGES'), ',')

// Tokens
param authEntraIssuer = readEnvironmentVariable('AUTH_ENTRA_ISSUER')
param authEntraAudience = readEnvironmentVariable('AUTH_ENTRA_AUDIENCE')
param authExternalIssuer = readEnvironmentVariable('AUTH_EXTERNAL_ISSUER')
param authExternalAudience = readEnvironmentVariable('AUTH_EXTERNAL_AUDIENCE')

// Payments: PayPal live. The PayPal credentials are Key Vault secrets set out-of-band (see
// keyVault.bicep), never here.
param paypalBaseUrl = 'https://api-m.paypal.com'

// Shipping: EasyPost (one base URL; the API key, a Key Vault secret carrier-api-key set
// out-of-band, decides the mode: here a production key (EZAK...): labels are bought).
param carrierBaseUrl = 'https://api.easypost.com'

// Deployment and secrets
param deployerIpRanges = empty(readEnvironmentVariable('DEPLOYER_IP_RANGES', '')) ? [] : split(readEnvironmentVariable('DEPLOYER_IP_RANGES', ''), ',')
param gdprPseudonymKey = readEnvironmentVariable('GDPR_PSEUDONYM_KEY', '')
param keyVaultNameSalt = readEnvironmentVariable('KEY_VAULT_NAME_SALT', '')
param keyVaultCreateMode = readEnvironmentVariable('KEY_VAULT_CREATE_MODE', 'default')
