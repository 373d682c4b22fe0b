// Cosmos DB for NoSQL: the account (Entra ID only, private endpoint only, continuous backup), the
// `platform` database with shared autoscale throughput, and its containers.
//
// The data model lives in the `containers` parameter below, in one place: change a partition key
// or a TTL there. A partition key path cannot change on an existing container; to change one,
// add a new container and migrate.

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

@description('''Containers of the database. partitionKeyPaths with more than one path makes a
hierarchical (MultiHash) key. defaultTtl in seconds (-1 = items may carry their own ttl, no
default); leave it out for no TTL at all.''')
param containers array = [
  {
    // customer profile, orders with their items, status history, GDPR requests
    name: 'customers'
    partitionKeyPaths: [
      '/tenantId'
      '/customerId'
    ]
  }
  {
    name: 'notifications'
    partitionKeyPaths: [
      '/tenantId'
      '/customerId'
    ]
    defaultTtl: 7776000 // 90 days
  }
  {
    name: 'products'
    partitionKeyPaths: [
      '/tenantId'
      '/productId'
    ]
  }
  {
    name: 'audit'
    partitionKeyPaths: [
      '/tenantId'
      '/month'
    ]
  }
  {
    name: 'idempotency'
    partitionKeyPaths: [
      '/tenantId'
    ]
    defaultTtl: 86400 // 1 day
  }
  {
    // job checkpoints and leases
    name: 'jobs'
    partitionKeyPaths: [
      '/jobName'
    ]
  }
  {
    name: 'processed_events'
    partitionKeyPaths: [
      '/tenantId'
    ]
    defaultTtl: 604800 // 7 days
  }
]

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

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = [for c in containers: {
  parent: database
  name: c.name
  properties: {
    resource: union({
      id: c.name
      partitionKey: {
        paths: c.partitionKeyPaths
        kind: length(c.partitionKeyPaths) > 1 ? 'MultiHash' : 'Hash'
        version: 2
      }
    }, contains(c, 'defaultTtl') ? {
      defaultTtl: c.defaultTtl
    } : {})
  }
}]

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
