// Key Vault in RBAC mode, private endpoint only. Holds the GDPR pseudonymisation key (the app
// reads it through a Key Vault reference) and the function key API Management forwards with
// (written by apim.bicep). Secrets are written through Azure Resource Manager, which the vault's
// firewall does not block, so deployments work from outside the VNet.
//
// The GDPR key secret exists after this module, or the deployment stops here: either a key was
// passed (first deployment, or an intended rotation) or the existing secret is read, which fails
// with ResourceNotFound naming secrets/gdpr-pseudonym-key. Everything that needs the secret (the
// role assignment on it in access.bicep, the app's Key Vault reference) comes after this module.
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
