// Key Vault in RBAC mode, private endpoint only. Holds the GDPR pseudonymisation key (the app
// reads it through a Key Vault reference) and the function key API Management forwards with
// (written by apim.bicep). Secrets are written through Azure Resource Manager, which the vault's
// firewall does not block, so deployments work from outside the VNet.

@description('Azure region.')
param location string

@description('Vault name (3-24 letters, digits, hyphens).')
@minLength(3)
@maxLength(24)
param name string

@description('Tags applied to every resource.')
param tags object

@description('Name of the secret holding the GDPR pseudonymisation key.')
param gdprKeySecretName string

@description('''The GDPR pseudonymisation key. Empty: leave the existing secret as it is (the
normal case after the first deployment; scripts/deploy generates one on the first). Changing it
changes every pseudonym produced from then on.''')
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
@description('Versionless secret URI: the app follows the latest version.')
output gdprKeySecretUri string = '${vault.properties.vaultUri}secrets/${gdprKeySecretName}'
