// The Functions host's own storage account (AzureWebJobsStorage: blob leases for timers and
// singletons, host keys, diagnostics events) and the Azure Files content share a Premium plan
// mounts. Reached only through private endpoints (blob, queue, table, file).
//
// The host itself uses its managed identity (AzureWebJobsStorage__* settings). Shared key access
// stays on for one reason: Azure Files content shares (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING)
// only accept a connection string with the account key.

@description('Azure region.')
param location string

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Tags applied to every resource.')
param tags object

@description('Replication. Standard_ZRS survives a zone outage; Standard_LRS is cheapest.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string

@description('Name of the Azure Files share the plan mounts as the app content.')
param contentShareName string

@description('Subnet for the private endpoints.')
param privateEndpointSubnetId string

@description('Private DNS zone ids by purpose (network.bicep output).')
param dnsZoneIds object

@description('Log Analytics workspace for diagnostics.')
param logAnalyticsWorkspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_206: Holds only host state (leases, keys, the deployed package), all recreated by a redeploy; skuName is Standard_ZRS in prod for zone outages, geo-replication adds nothing to a single-region app.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    shareDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Created up front: with the account closed to public traffic the platform cannot create it at
// site creation time (WEBSITE_SKIP_CONTENTSHARE_VALIDATION=1 in functionApp.bicep).
resource contentShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: fileService
  name: contentShareName
  properties: {
    shareQuota: 100
    enabledProtocols: 'SMB'
  }
}

module endpoints 'privateEndpoint.bicep' = [for groupId in [
  'blob'
  'queue'
  'table'
  'file'
]: {
  name: 'pe-${name}-${groupId}'
  params: {
    location: location
    name: 'pe-${name}-${groupId}'
    tags: tags
    subnetId: privateEndpointSubnetId
    serviceId: account.id
    groupId: groupId
    dnsZoneId: dnsZoneIds[groupId]
  }
}]

// preview API: Microsoft.Insights/diagnosticSettings has no newer version than 2021-05-01-preview, the first
// with categoryGroup and the one the Azure Verified Modules use; its only GA version (2016-09-01) predates them.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: blobService
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output contentShareName string = contentShare.name
