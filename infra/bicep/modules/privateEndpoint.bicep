// One private endpoint for one sub-resource (groupId) of one service, registered in its private
// DNS zone so that the service's public host name resolves to the private IP inside the VNet.

@description('Azure region.')
param location string

@description('Private endpoint name.')
param name string

@description('Tags applied to every resource.')
param tags object

@description('Subnet the endpoint gets its IP from.')
param subnetId string

@description('Resource id of the service to reach privately.')
param serviceId string

@description('Sub-resource: blob, queue, table, file, Sql, namespace, vault, sites.')
param groupId string

@description('Private DNS zone the endpoint registers its A record in.')
param dnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: serviceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource dnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(last(split(dnsZoneId, '/')), '.', '-')
        properties: {
          privateDnsZoneId: dnsZoneId
        }
      }
    ]
  }
}

output id string = endpoint.id
