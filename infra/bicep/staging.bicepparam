// Staging: production's topology (Service Bus Premium behind a private endpoint, the same private
// endpoints and API Management tier) at the smallest size, without zone redundancy, and easy to
// tear down (one day of archive immutability). The pipeline deploys here after dev and before
// production, and runs the end-to-end tests against it.
// Tenant-specific values come from environment variables (see README.md (Deploying)); scripts/deploy
// checks they are set before it calls Azure.
using 'main.bicep'

param environmentName = 'staging'
param tags = {
  workload: 'customer-platform'
  environment: 'staging'
}

// Functions Premium: one always-ready EP1 instance, bursting to 5.
param planSku = 'EP1'
param minimumInstances = 1
param maximumBurst = 5
param zoneRedundant = false

// Data
param hostStorageSku = 'Standard_LRS'
param cosmosMaxThroughput = 1000
param cosmosBackupTier = 'Continuous7Days'
// One day of immutability, so the environment can be rebuilt the day after.
param archiveImmutabilityDays = 1
param archiveImmutabilityState = 'Unlocked'

// Messaging: Premium, as in production (private endpoint, no public access).
param serviceBusSku = 'Premium'
param serviceBusPremiumCapacity = 1

// Monitoring
param logRetentionDays = 30
param logDailyQuotaGb = 5

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

// Payments: PayPal's sandbox. The PayPal credentials are Key Vault secrets set out-of-band (see
// keyVault.bicep), never here.
param paypalBaseUrl = 'https://api-m.sandbox.paypal.com'

// Shipping: EasyPost (one base URL; the API key, a Key Vault secret carrier-api-key set
// out-of-band, decides the mode: here a test key (EZTK...): labels are free and never shipped).
param carrierBaseUrl = 'https://api.easypost.com'

// Deployment and secrets
param deployerIpRanges = empty(readEnvironmentVariable('DEPLOYER_IP_RANGES', '')) ? [] : split(readEnvironmentVariable('DEPLOYER_IP_RANGES', ''), ',')
param gdprPseudonymKey = readEnvironmentVariable('GDPR_PSEUDONYM_KEY', '')
param keyVaultNameSalt = readEnvironmentVariable('KEY_VAULT_NAME_SALT', '')
param keyVaultCreateMode = readEnvironmentVariable('KEY_VAULT_CREATE_MODE', 'default')
