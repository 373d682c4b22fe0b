// Azure SignalR Service for live notifications, in Serverless mode: the function app negotiates
// (signalRConnectionInfo input binding) and sends (signalR output binding of OutboxRelay); the
// service holds the clients' WebSocket connections.
//   - Local auth (access keys) disabled: the function app uses its managed identity, with the
//     SignalR App Server role (access.bicep) and AzureSignalRConnectionString__serviceUri.
//   - Clients reach the service's public endpoint for client connections only; the server side
//     (REST API, server connections, traces) is refused from the internet and reaches the
//     service through its private endpoint in the VNet.
//   - CORS for the client applications' origins (the browser calls the service's negotiate).

@description('Azure region.')
param location string

@description('SignalR Service name (globally unique: part of its host name).')
param name string

@description('Tags applied to every resource.')
param tags object

@description('Units of Standard_S1 (1 unit: 1,000 concurrent connections). Private endpoints need the Standard or Premium tier.')
@minValue(1)
param capacity int = 1

@description('Origins of the client applications, allowed by CORS.')
param allowedOrigins array

@description('Subnet for the private endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone ids by purpose (network.bicep output).')
param dnsZoneIds object

resource signalR 'Microsoft.SignalRService/signalR@2024-03-01' = {
  name: name
  location: location
  tags: tags
  kind: 'SignalR'
  sku: {
    name: 'Standard_S1'
    tier: 'Standard'
    capacity: capacity
  }
  properties: {
    features: [
      {
        flag: 'ServiceMode'
        value: 'Serverless'
      }
      {
        flag: 'EnableConnectivityLogs'
        value: 'True'
      }
    ]
    cors: {
      allowedOrigins: allowedOrigins
    }
    disableLocalAuth: true
    disableAadAuth: false
    publicNetworkAccess: 'Enabled'
    networkACLs: {
      defaultAction: 'Allow'
      publicNetwork: {
        deny: [
          'ServerConnection'
          'RESTAPI'
          'Trace'
        ]
      }
    }
    tls: {
      clientCertEnabled: false
    }
  }
}

module endpoint 'privateEndpoint.bicep' = {
  name: 'pe-${name}-signalr'
  params: {
    location: location
    name: 'pe-${name}-signalr'
    tags: tags
    subnetId: privateEndpointSubnetId
    serviceId: signalR.id
    groupId: 'signalr'
    dnsZoneId: dnsZoneIds.signalr
  }
}

output name string = signalR.name
@description('The service endpoint the function app\'s bindings use (AzureSignalRConnectionString__serviceUri).')
output serviceUri string = 'https://${signalR.properties.hostName}'
