// Cosmos DB for NoSQL: the account (Entra ID only, private endpoint only, continuous backup), the
// `platform` database with shared autoscale throughput, the store's two containers, `tenantdata`
// and `jobs` (the data model below; scripts/test-infra checks it against the app), and `leases`,
// the outbox relay's change feed checkpoints (the Functions host's, not the store's).

@description('Azure region.')
param location string

@description('Account name (3-44 lowercase letters, digits, hyphens).')
param name string

@description('Tags applied to every resource.')
param tags object

@description('Database name (COSMOS_DATABASE).')
param databaseName string = 'platform'

@description('Autoscale ceiling in RU/s shared by all containers of the database (billing floor is 10% of it).')
@minValue(1000)
param maxThroughput int

@description('Continuous backup window: 7 days (free) or 30 days.')
@allowed([
  'Continuous7Days'
  'Continuous30Days'
])
param backupTier string

@description('Spread the account across availability zones (needs a region that has them).')
param zoneRedundant bool

@description('Subnet for the private endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone ids by purpose (network.bicep output).')
param dnsZoneIds object

@description('Log Analytics workspace for diagnostics.')
param logAnalyticsWorkspaceId string

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: zoneRedundant
      }
    ]
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    publicNetworkAccess: 'Disabled'
    isVirtualNetworkFilterEnabled: false
    ipRules: []
    minimalTlsVersion: 'Tls12'
    enableAutomaticFailover: false
    enableMultipleWriteLocations: false
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: {
        tier: backupTier
      }
    }
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: {
      autoscaleSettings: {
        maxThroughput: maxThroughput
      }
    }
  }
}

// The data model of the Cosmos DB store (shared/src/store/cosmos/mod.rs, its module doc). The app
// cannot create these with Entra ID (the data plane roles do not cover databases and containers),
// so they live here. A partition key cannot change on an existing container: to change one, add
// a new container and migrate.

// Every tenant's records. Hierarchical key [tenantId, scope]: a tenant's listings are queries on
// a key prefix; one scope (a customer, the catalogue, the tenant) is one transactional batch.
resource tenantData 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = {
  parent: database
  name: 'tenantdata'
  properties: {
    resource: {
      id: 'tenantdata'
      partitionKey: {
        paths: [
          '/tenantId'
          '/scope'
        ]
        kind: 'MultiHash'
        version: 2
      }
      // TTL on, no default: notifications, idempotency keys, processed-event markers and outbox
      // records (OUTBOX_TTL_SECONDS) carry their own `ttl`; everything else lives until deleted.
      // An outbox record that expires unsent is never sent (the change feed has no deletes): the
      // outbox-lag alert (alerts.bicep) fires long before.
      defaultTtl: -1
      // data_indexing_policy() in mod.rs: everything indexed, plus the composite indexes the
      // listings' ORDER BY sortKey, id (both directions) needs.
      indexingPolicy: {
        indexingMode: 'consistent'
        automatic: true
        includedPaths: [
          {
            path: '/*'
          }
        ]
        excludedPaths: [
          {
            path: '/"_etag"/?'
          }
        ]
        compositeIndexes: [
          [
            {
              path: '/sortKey'
              order: 'descending'
            }
            {
              path: '/id'
              order: 'descending'
            }
          ]
          [
            {
              path: '/sortKey'
              order: 'ascending'
            }
            {
              path: '/id'
              order: 'ascending'
            }
          ]
          [
            {
              path: '/at'
              order: 'ascending'
            }
            {
              path: '/id'
              order: 'ascending'
            }
          ]
        ]
      }
    }
  }
}

// Job leases (with their checkpoints) and run reports, one partition per job.
resource jobs 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = {
  parent: database
  name: 'jobs'
  properties: {
    resource: {
      id: 'jobs'
      partitionKey: {
        paths: [
          '/jobName'
        ]
        kind: 'Hash'
        version: 2
      }
    }
  }
}

// Not the store's: the lease container of the Functions host's change feed trigger
// (functions/OutboxRelay: leaseContainerName `leases`, one processor per leaseContainerPrefix).
// The extension could create it (createLeaseContainerIfNotExists), but only with keys: with Entra
// ID the data plane cannot create containers, so that flag stays false and Bicep declares the
// container as the extension would have made it: partition key /id, TTL on without a default.
// Leases hold the feed's checkpoints: deleting this container replays the outbox records still
// within their TTL (startFromBeginning), which consumers absorb by event id.
resource leases 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = {
  parent: database
  name: 'leases'
  properties: {
    resource: {
      id: 'leases'
      partitionKey: {
        paths: [
          '/id'
        ]
        kind: 'Hash'
        version: 2
      }
      defaultTtl: -1
    }
  }
}

module endpoint 'privateEndpoint.bicep' = {
  name: 'pe-${name}-sql'
  params: {
    location: location
    name: 'pe-${name}-sql'
    tags: tags
    subnetId: privateEndpointSubnetId
    serviceId: account.id
    groupId: 'Sql'
    dnsZoneId: dnsZoneIds.cosmos
  }
}

// preview API: Microsoft.Insights/diagnosticSettings has no newer version than 2021-05-01-preview, the first
// with categoryGroup and the one the Azure Verified Modules use; its only GA version (2016-09-01) predates them.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: account
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
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
