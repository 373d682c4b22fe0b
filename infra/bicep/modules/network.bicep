// The virtual network everything private lives in: one subnet for the function app's outbound
// VNet integration, one for API Management's outbound VNet integration (Standard v2), one for the
// private endpoints; an NSG on each; and the private DNS zones (linked to the VNet) that make the
// private endpoints resolve from inside it.
//
// The function app's subnet has a NAT gateway with one static Standard public IP: with all of the
// app's outbound traffic routed through the VNet (functionApp.bicep, vnetRouteAllEnabled), every
// call to the internet (PayPal's REST API) leaves from that one address, which a gateway can
// allow-list (main.bicep outputs it as outboundIpAddress). Private endpoints are not affected.

@description('Azure region.')
param location string

@description('Resource name prefix, e.g. custplat-dev.')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Address space of the VNet.')
param addressPrefix string

@description('Subnet for the function app VNet integration (delegated to Microsoft.Web/serverFarms, /26 or larger; /24 leaves room to burst).')
param functionSubnetPrefix string

@description('Subnet for API Management Standard v2 VNet integration (delegated to Microsoft.Web/serverFarms, /27 or larger).')
param apimSubnetPrefix string

@description('Subnet for private endpoints.')
param privateEndpointSubnetPrefix string

// Private DNS zones, one per private-endpoint sub-resource type used in this deployment, named
// for the cloud the deployment runs in (environment()): the zone names Microsoft documents in
// "Azure Private Endpoint private DNS zone values" for public Azure, Azure Government and Azure
// operated by 21Vianet. Storage, Key Vault and Service Bus follow from environment()'s suffixes
// (core.windows.net, .vault.azure.net); Cosmos DB, App Service and SignalR have no suffix there, so they
// come from the cloud's name (an unknown cloud fails the deployment here, by name).
var storageSuffix = environment().suffixes.storage
var cloudDomain = replace(storageSuffix, 'core.', '')
var cloudZones = {
  AzureCloud: {
    cosmos: 'documents.azure.com'
    sites: 'azurewebsites.net'
    signalr: 'service.signalr.net'
  }
  AzureUSGovernment: {
    cosmos: 'documents.azure.us'
    sites: 'azurewebsites.us'
    signalr: 'signalr.azure.us'
  }
  AzureChinaCloud: {
    cosmos: 'documents.azure.cn'
    sites: 'chinacloudsites.cn'
    signalr: 'signalr.azure.cn'
  }
}
var cloud = cloudZones[environment().name]
var zoneNames = {
  blob: 'privatelink.blob.${storageSuffix}'
  queue: 'privatelink.queue.${storageSuffix}'
  table: 'privatelink.table.${storageSuffix}'
  file: 'privatelink.file.${storageSuffix}'
  cosmos: 'privatelink.${cloud.cosmos}'
  serviceBus: 'privatelink.servicebus.${cloudDomain}'
  keyVault: 'privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}'
  sites: 'privatelink.${cloud.sites}'
  signalr: 'privatelink.${cloud.signalr}'
}
var zoneNameList = [
  zoneNames.blob
  zoneNames.queue
  zoneNames.table
  zoneNames.file
  zoneNames.cosmos
  zoneNames.serviceBus
  zoneNames.keyVault
  zoneNames.sites
  zoneNames.signalr
]

resource nsgFunction 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-${namePrefix}-func'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource nsgApim 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-${namePrefix}-apim'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource nsgPrivateEndpoints 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-${namePrefix}-pe'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource natPublicIp 'Microsoft.Network/publicIPAddresses@2023-11-01' = {
  name: 'pip-${namePrefix}-nat'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Regional'
  }
  properties: {
    publicIPAddressVersion: 'IPv4'
    publicIPAllocationMethod: 'Static'
    idleTimeoutInMinutes: 4
  }
}

resource natGateway 'Microsoft.Network/natGateways@2023-11-01' = {
  name: 'ng-${namePrefix}-func'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: natPublicIp.id
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: 'vnet-${namePrefix}'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-func'
        properties: {
          addressPrefix: functionSubnetPrefix
          networkSecurityGroup: {
            id: nsgFunction.id
          }
          // Outbound to the internet from one static IP (see above).
          natGateway: {
            id: natGateway.id
          }
          delegations: [
            {
              name: 'serverFarms'
              properties: {
                serviceName: 'Microsoft.Web/serverFarms'
              }
            }
          ]
        }
      }
      {
        name: 'snet-apim'
        properties: {
          addressPrefix: apimSubnetPrefix
          networkSecurityGroup: {
            id: nsgApim.id
          }
          delegations: [
            {
              name: 'serverFarms'
              properties: {
                serviceName: 'Microsoft.Web/serverFarms'
              }
            }
          ]
        }
      }
      {
        name: 'snet-pe'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: nsgPrivateEndpoints.id
          }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for zoneName in zoneNameList: {
  name: zoneName
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (zoneName, i) in zoneNameList: {
  parent: zones[i]
  name: 'link-${vnet.name}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

output vnetId string = vnet.id
output functionSubnetId string = '${vnet.id}/subnets/snet-func'
output apimSubnetId string = '${vnet.id}/subnets/snet-apim'
output privateEndpointSubnetId string = '${vnet.id}/subnets/snet-pe'
@description('The NAT gateway\'s static public IP: the source address of the function app\'s outbound internet traffic.')
output natPublicIpAddress string = natPublicIp.properties.ipAddress

@description('Private DNS zone resource ids by purpose: blob, queue, table, file, cosmos, serviceBus, keyVault, sites, signalr.')
output dnsZoneIds object = {
  blob: resourceId('Microsoft.Network/privateDnsZones', zoneNames.blob)
  queue: resourceId('Microsoft.Network/privateDnsZones', zoneNames.queue)
  table: resourceId('Microsoft.Network/privateDnsZones', zoneNames.table)
  file: resourceId('Microsoft.Network/privateDnsZones', zoneNames.file)
  cosmos: resourceId('Microsoft.Network/privateDnsZones', zoneNames.cosmos)
  serviceBus: resourceId('Microsoft.Network/privateDnsZones', zoneNames.serviceBus)
  keyVault: resourceId('Microsoft.Network/privateDnsZones', zoneNames.keyVault)
  sites: resourceId('Microsoft.Network/privateDnsZones', zoneNames.sites)
  signalr: resourceId('Microsoft.Network/privateDnsZones', zoneNames.signalr)
}
