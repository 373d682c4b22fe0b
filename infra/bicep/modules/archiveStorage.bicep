// The audit archive: a storage account of its own (ARCHIVE=blob, ARCHIVE_BLOB_ENDPOINT) holding
// the `audit-archive` container. Write-once: blob versioning plus version-level time-based
// immutability, so an archived audit batch can be neither altered nor deleted before its
// retention ends. Lifecycle rules move it to Cool after 30 days and Archive after 180. No public
// access, no shared keys (Entra ID only), geo-redundant, reached only through a private endpoint.

@description('Azure region.')
param location string

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Tags applied to every resource.')
param tags object

@description('Container the app writes audit archives to (ARCHIVE_CONTAINER).')
param containerName string

@description('Days every blob version stays immutable after it is written (3650 = 10 years, RETENTION_AUDIT_YEARS).')
@minValue(1)
@maxValue(146000)
param immutabilityDays int

@description('Unlocked: the retention can still be shortened or removed by an administrator. Locked: irreversible, only extendable. Lock once the retention is confirmed.')
@allowed([
  'Unlocked'
  'Locked'
])
param immutabilityState string

@description('Days after which archived blobs move to the Cool tier.')
param coolAfterDays int = 30

@description('Days after which archived blobs move to the Archive tier.')
param archiveAfterDays int = 180

@description('Subnet for the private endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone ids by purpose (network.bicep output).')
param dnsZoneIds object

@description('Log Analytics workspace for diagnostics.')
param logAnalyticsWorkspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  // Geo-redundant: the archive is the audit record of last resort. (The Archive tier rules out
  // ZRS and GZRS.)
  sku: {
    name: 'Standard_GRS'
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
    }
    immutableStorageWithVersioning: {
      enabled: true
      immutabilityPolicy: {
        immutabilityPeriodSinceCreationInDays: immutabilityDays
        state: immutabilityState
        allowProtectedAppendWrites: false
      }
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
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
    deleteRetentionPolicy: {
      enabled: true
      days: 30
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 30
    }
  }
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
    immutableStorageWithVersioning: {
      enabled: true
    }
  }
}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'audit-archive-tiering'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${containerName}/'
              ]
            }
            actions: {
              baseBlob: {
                tierToCool: {
                  daysAfterModificationGreaterThan: coolAfterDays
                }
                tierToArchive: {
                  daysAfterModificationGreaterThan: archiveAfterDays
                }
              }
              version: {
                tierToCool: {
                  daysAfterCreationGreaterThan: coolAfterDays
                }
                tierToArchive: {
                  daysAfterCreationGreaterThan: archiveAfterDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

module endpoint 'privateEndpoint.bicep' = {
  name: 'pe-${name}-blob'
  params: {
    location: location
    name: 'pe-${name}-blob'
    tags: tags
    subnetId: privateEndpointSubnetId
    serviceId: account.id
    groupId: 'blob'
    dnsZoneId: dnsZoneIds.blob
  }
}

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
output containerName string = container.name
