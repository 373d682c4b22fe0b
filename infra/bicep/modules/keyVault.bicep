// Key Vault in RBAC mode, private endpoint only. Holds the GDPR pseudonymisation key and the
// PayPal credentials (the app reads them through Key Vault references) and the function key API
// Management forwards with (written by apim.bicep). Secrets are written through Azure Resource Manager, which the vault's
// firewall does not block, so deployments work from outside the VNet.
//
// The GDPR key secret exists after this module, or the deployment stops here: either a key was
// passed (first deployment, or an intended rotation) or the existing secret is read, which fails
// with ResourceNotFound naming secrets/gdpr-pseudonym-key. Everything that needs the secret (the
// role assignment on it in access.bicep, the app's Key Vault reference) comes after this module.
//
// The PayPal secrets (paypal-client-id, paypal-client-secret, paypal-webhook-ids) follow the same
// rule: a value passed to this module (a @secure() parameter of main.bicep, never a default in
// the repository and never in a .bicepparam file) writes a new version; an empty one keeps the
// secret as it is, which must then exist, or the deployment stops here naming the secret. They are
// set out-of-band by whoever holds the PayPal app's credentials: once per environment before the
// first deployment with the payments integration, and again on a rotation, either with
// `az keyvault secret set` from a machine that reaches the vault's private endpoint (the vault
// has no public access), or by a deployment that passes main.bicep's paypalClientId,
// paypalClientSecret and paypalWebhookIds (no .bicepparam file and not scripts/deploy: neither
// passes them yet, so a secret is never on a command line or in the repository by default).
// paypal-webhook-ids is a comma-separated list of PayPal webhook ids, so a new webhook can be
// added before the old one is removed.
//
// Soft delete with purge protection keeps a deleted vault's name for 90 days. createMode
// 'recover' brings such a vault back (scripts/deploy chooses it when the resource group held one);
// main.bicep's keyVaultNameSalt gives a new name instead.

@description('Azure region.')
param location string

@description('Vault name (3-24 letters, digits, hyphens).')
@minLength(3)
@maxLength(24)
param name string

@description('Tags applied to every resource.')
param tags object

@description('default: create or update. recover: recover the soft-deleted vault of this name, secrets included.')
@allowed([
  'default'
  'recover'
])
param createMode string = 'default'

@description('Name of the secret holding the GDPR pseudonymisation key.')
param gdprKeySecretName string

@description('''The GDPR pseudonymisation key. Empty: leave the existing secret as it is (the
normal case after the first deployment; scripts/deploy generates one on the first), which must
then exist. Changing it changes every pseudonym produced from then on.''')
@secure()
param gdprPseudonymKey string

@description('Name of the secret holding the PayPal client id.')
param paypalClientIdSecretName string

@description('Name of the secret holding the PayPal client secret.')
param paypalClientSecretSecretName string

@description('Name of the secret holding the PayPal webhook ids (comma-separated).')
param paypalWebhookIdsSecretName string

@description('Name of the secret holding the ERP password.')
param erpPasswordSecretName string

@description('Whether the environment has an ERP (main.bicep\'s erpBaseUrl is set): then its password secret must exist.')
param erpConfigured bool

@description('The ERP password. Empty: keep the existing secret (which must exist when the environment has an ERP).')
@secure()
param erpPassword string

@description('Name of the secret holding the carrier (EasyPost) API key.')
param carrierApiKeySecretName string

@description('Whether the environment has a carrier (main.bicep\'s carrierBaseUrl is set): then its API key secret must exist.')
param carrierConfigured bool

@description('The carrier API key. Empty: keep the existing secret (which must exist when the environment has a carrier).')
@secure()
param carrierApiKey string

@description('PayPal REST app client id. Empty: keep the existing secret, which must then exist.')
@secure()
param paypalClientId string

@description('PayPal REST app client secret. Empty: keep the existing secret, which must then exist.')
@secure()
param paypalClientSecret string

@description('PayPal webhook ids, comma-separated (more than one during a rotation). Empty: keep the existing secret, which must then exist.')
@secure()
param paypalWebhookIds string

@description('Subnet for the private endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone ids by purpose (network.bicep output).')
param dnsZoneIds object

@description('Log Analytics workspace for diagnostics.')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    createMode: createMode
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
  }
}

resource gdprKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(gdprPseudonymKey)) {
  // checkov:skip=CKV_AZURE_41: The pseudonymisation key must outlive every pseudonym made with it; an expiry date would break GDPR erasure on a calendar date, not on a rotation.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  parent: vault
  name: gdprKeySecretName
  properties: {
    value: gdprPseudonymKey
    contentType: 'text/plain'
  }
}

// No key passed: the secret must already be there. Its metadata comes from Azure Resource Manager
// (not the private data plane); a missing secret fails the deployment here, early and by name.
resource existingGdprKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: gdprKeySecretName
}

// PayPal credentials: written only when a value is passed, otherwise read (an existence check).
resource paypalClientIdSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(paypalClientId)) {
  // checkov:skip=CKV_AZURE_41: The value is PayPal's and is rotated there (then passed here); an expiry date in Key Vault would stop payments on a date, not on a rotation.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  parent: vault
  name: paypalClientIdSecretName
  properties: {
    value: paypalClientId
    contentType: 'text/plain'
  }
}

// The ERP password: written only when a value is passed.
resource erpPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(erpPassword)) {
  // checkov:skip=CKV_AZURE_41: The password is the ERP's and is rotated there (then passed here); an expiry date in Key Vault would stop the ERP sync on a date, not on a rotation.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  parent: vault
  name: erpPasswordSecretName
  properties: {
    value: erpPassword
    contentType: 'text/plain'
  }
}

resource existingErpPassword 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (erpConfigured) {
  parent: vault
  name: erpPasswordSecretName
}

// The carrier API key: written only when a value is passed.
resource carrierApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(carrierApiKey)) {
  // checkov:skip=CKV_AZURE_41: The key is EasyPost's and is rotated in its dashboard (then passed here); an expiry date in Key Vault would stop labels on a date, not on a rotation.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  parent: vault
  name: carrierApiKeySecretName
  properties: {
    value: carrierApiKey
    contentType: 'text/plain'
  }
}

resource existingCarrierApiKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = if (carrierConfigured) {
  parent: vault
  name: carrierApiKeySecretName
}

resource existingPaypalClientId 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: paypalClientIdSecretName
}

resource paypalClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(paypalClientSecret)) {
  // checkov:skip=CKV_AZURE_41: The value is PayPal's and is rotated there (then passed here); an expiry date in Key Vault would stop payments on a date, not on a rotation.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  parent: vault
  name: paypalClientSecretSecretName
  properties: {
    value: paypalClientSecret
    contentType: 'text/plain'
  }
}

resource existingPaypalClientSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: paypalClientSecretSecretName
}

resource paypalWebhookIdsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(paypalWebhookIds)) {
  // checkov:skip=CKV_AZURE_41: The ids are PayPal's webhooks, replaced by adding the new id before removing the old; an expiry date would stop webhook verification on a date.
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource.
  parent: vault
  name: paypalWebhookIdsSecretName
  properties: {
    value: paypalWebhookIds
    contentType: 'text/plain'
  }
}

resource existingPaypalWebhookIds 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: paypalWebhookIdsSecretName
}

module endpoint 'privateEndpoint.bicep' = {
  name: 'pe-${name}-vault'
  params: {
    location: location
    name: 'pe-${name}-vault'
    tags: tags
    subnetId: privateEndpointSubnetId
    serviceId: vault.id
    groupId: 'vault'
    dnsZoneId: dnsZoneIds.keyVault
  }
}

// preview API: Microsoft.Insights/diagnosticSettings has no newer version than 2021-05-01-preview, the first
// with categoryGroup and the one the Azure Verified Modules use; its only GA version (2016-09-01) predates them.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: vault
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
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

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
@description('Versionless secret URI: the app follows the latest version. Reading it from the existing secret when no key was passed is the existence check.')
output gdprKeySecretUri string = empty(gdprPseudonymKey) ? existingGdprKey.properties.secretUri : '${vault.properties.vaultUri}secrets/${gdprKeySecretName}'
@description('The GDPR key secret\'s name, for what needs the secret to exist (access.bicep).')
output gdprKeySecretName string = gdprKeySecretName
@description('Versionless secret URIs of the PayPal credentials; read from the existing secrets when no value was passed (the existence check).')
output paypalClientIdSecretUri string = empty(paypalClientId) ? existingPaypalClientId.properties.secretUri : '${vault.properties.vaultUri}secrets/${paypalClientIdSecretName}'
output paypalClientSecretSecretUri string = empty(paypalClientSecret) ? existingPaypalClientSecret.properties.secretUri : '${vault.properties.vaultUri}secrets/${paypalClientSecretSecretName}'
output paypalWebhookIdsSecretUri string = empty(paypalWebhookIds) ? existingPaypalWebhookIds.properties.secretUri : '${vault.properties.vaultUri}secrets/${paypalWebhookIdsSecretName}'
@description('The PayPal secrets\' names, for what needs them to exist (access.bicep).')
@description('Versionless secret URI of the ERP password; read from the existing secret when the environment has an ERP and no value was passed (the existence check). Without an ERP nothing reads it (access.bicep grants nothing).')
output erpPasswordSecretUri string = erpConfigured && empty(erpPassword) ? existingErpPassword.properties.secretUri : '${vault.properties.vaultUri}secrets/${erpPasswordSecretName}'
output erpPasswordSecretName string = erpPasswordSecretName

@description('Versionless secret URI of the carrier API key; read from the existing secret when the environment has a carrier and no value was passed (the existence check).')
output carrierApiKeySecretUri string = carrierConfigured && empty(carrierApiKey) ? existingCarrierApiKey.properties.secretUri : '${vault.properties.vaultUri}secrets/${carrierApiKeySecretName}'
output carrierApiKeySecretName string = carrierApiKeySecretName
output paypalClientIdSecretName string = paypalClientIdSecretName
output paypalClientSecretSecretName string = paypalClientSecretSecretName
output paypalWebhookIdsSecretName string = paypalWebhookIdsSecretName
