// API Management in front of the function app: two APIs over the same backend, each in its own
// product.
//   external  clients; Entra External ID tokens; 1000 calls/min per caller; CORS for the client
//             app's origins; /admin routes answer 404.
//   internal  employees; Entra ID tokens; 5000 calls/min per caller; /admin routes only from the
//             admin IP allow-list.
// Both strip client-supplied identity and tenant headers, pass a correlation id, forward to the
// function app's private endpoint with its function key (a Key Vault-backed named value), and
// answer their own errors with problem documents.
//
// Payments (PayPal): the payments routes (/v1/payments..., /v1/orders/{id}/payments) are
// operations of both APIs, declared below until the app's OpenAPI document has them, under the
// APIs' token validation like every other route. One operation is different: PayPal's webhook,
// POST /v1/payments/webhooks/{provider} on the external API, has an operation policy
// (apim-policies/external/payment-webhook.xml) that does not inherit the API's inbound policy, so
// no token is asked for (PayPal signs its calls; the handler verifies the signature against
// PAYPAL_WEBHOOK_IDS); it is rate-limited per source address and forwards the body and the
// PAYPAL-* headers untouched. It is the only route without validate-jwt (scripts/test-infra).
//
// The policies are the XML files under apim-policies/, loaded here (loadTextContent), not copied.
// The API definition is apim-policies/openapi.json, which the app generates (`handler openapi`,
// issue 3): its paths are relative to the Functions route prefix (`/customers`, not
// `/api/customers`), the backend URL below ends in /api.
//
// Standard v2 with outbound VNet integration: the gateway stays public (it is the front door),
// and reaches the function app, Key Vault and the named values' secrets through the VNet.
//
// Order: main.bicep runs this module after the app's roles have taken effect, so the host can
// keep its keys. The function key is read after the API Management service exists (on a first
// deployment that takes minutes, by which time a new host is up), copied into Key Vault, then
// API Management's identity gets Key Vault Secrets User on that one secret, and the Key Vault-
// backed named value is created only after that assignment has taken effect (rolePropagation).

@description('Azure region.')
param location string

@description('API Management service name (globally unique).')
param name string

@description('Tags applied to every resource.')
param tags object

@description('Tier. Standard v2 is the smallest tier with outbound VNet integration.')
@allowed([
  'StandardV2'
  'PremiumV2'
])
param skuName string

@description('Scale units.')
@minValue(1)
param capacity int

@description('Publisher e-mail (notifications from API Management).')
param publisherEmail string

@description('Publisher organisation name.')
param publisherName string

@description('Subnet for outbound VNet integration (delegated to Microsoft.Web/serverFarms).')
param apimSubnetId string

@description('Log Analytics workspace for diagnostics.')
param logAnalyticsWorkspaceId string

@description('Function app name (its host key is read from here).')
param functionAppName string

@description('Key Vault the function key is kept in.')
param keyVaultName string

@description('Secret name for the function key API Management forwards with.')
param functionKeySecretName string

@description('Token issuers and audiences: entraIssuer, entraAudience, externalIssuer, externalAudience.')
param auth object

@description('Origins the client app is served from (CORS on the external API), e.g. https://app.contoso.com.')
@minLength(1)
param externalClientOrigins array

@description('IPv4 addresses or ranges allowed on /admin routes of the internal API: "203.0.113.10" or "203.0.113.0-203.0.113.255".')
@minLength(1)
param adminIpRanges array

@description('Seconds to wait for API Management\'s secret-reader role before the named value reads Key Vault (0: no wait).')
@minValue(0)
@maxValue(1800)
param rolePropagationSeconds int = 300

@description('Gateway path of the external API.')
param externalApiPath string = 'api'

@description('Gateway path of the internal API.')
param internalApiPath string = 'internal/api'

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

// Lists become repeated XML elements in place of the placeholder element in the policy file.
var originElements = [for origin in externalClientOrigins: '<origin>${origin}</origin>']
var adminRangeElements = [for range in adminIpRanges: '<address-range from="${split(range, '-')[0]}" to="${last(split(range, '-'))}" />']
var externalPolicy = replace(loadTextContent('../../../apim-policies/external/api.xml'), '<origin>__EXTERNAL_CLIENT_ORIGINS__</origin>', join(originElements, ''))
var internalPolicy = replace(loadTextContent('../../../apim-policies/internal/api.xml'), '<address-range from="__ADMIN_IP_FROM__" to="__ADMIN_IP_TO__" />', join(adminRangeElements, ''))

resource functionApp 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// The function app's default function key, copied into Key Vault on every deployment.
resource functionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: Rewritten from the function app's key on every deployment; rotate by renewing the key and redeploying. An expiry would cut API Management off on a date instead.
  parent: vault
  name: functionKeySecretName
  properties: {
    value: listKeys('${functionApp.id}/host/default', '2023-12-01').functionKeys.default
    contentType: 'text/plain'
  }
  // A new host needs a little while before it lists its keys; the service takes longer to create.
  dependsOn: [
    apim
  ]
}

resource apim 'Microsoft.ApiManagement/service@2024-05-01' = {
  // checkov:skip=CKV_AZURE_174: The gateway is the platform's public front door for client apps; the backends behind it are private.
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    capacity: capacity
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
    virtualNetworkType: 'External'
    virtualNetworkConfiguration: {
      subnetResourceId: apimSubnetId
    }
    // v2 gateways accept TLS 1.2 and newer only; no customProperties needed.
  }
}

resource apimSecretRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: functionKeySecret
  name: guid(functionKeySecret.id, apim.id, keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: apim.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// API Management reads the secret as soon as the named value is created: not before its new role
// has taken effect.
module apimSecretReadPropagated 'rolePropagation.bicep' = if (rolePropagationSeconds > 0) {
  name: 'wait-${name}-secret-read'
  params: {
    location: location
    name: 'wait-${name}-secret-read'
    tags: tags
    seconds: max(rolePropagationSeconds, 1)
    trigger: apimSecretRead.id
  }
}

resource functionKeyValue 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'function-app-key'
  properties: {
    displayName: 'function-app-key'
    secret: true
    keyVault: {
      secretIdentifier: '${vault.properties.vaultUri}secrets/${functionKeySecret.name}'
    }
  }
  dependsOn: [
    apimSecretRead
    apimSecretReadPropagated
  ]
}

resource externalOpenIdConfig 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'external-openid-config-url'
  properties: {
    displayName: 'external-openid-config-url'
    value: '${auth.externalIssuer}/.well-known/openid-configuration'
  }
}

resource externalIssuer 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'external-issuer'
  properties: {
    displayName: 'external-issuer'
    value: auth.externalIssuer
  }
}

resource externalAudience 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'external-audience'
  properties: {
    displayName: 'external-audience'
    value: auth.externalAudience
  }
}

resource internalOpenIdConfig 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'internal-openid-config-url'
  properties: {
    displayName: 'internal-openid-config-url'
    value: '${auth.entraIssuer}/.well-known/openid-configuration'
  }
}

resource internalIssuer 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'internal-issuer'
  properties: {
    displayName: 'internal-issuer'
    value: auth.entraIssuer
  }
}

resource internalAudience 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = {
  parent: apim
  name: 'internal-audience'
  properties: {
    displayName: 'internal-audience'
    value: auth.entraAudience
  }
}

resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: apim
  name: 'function-app'
  properties: {
    description: 'The function app, through its private endpoint.'
    protocol: 'http'
    url: 'https://${functionApp.properties.defaultHostName}/api'
    resourceId: '${environment().resourceManager}${substring(functionApp.id, 1)}'
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
  }
}

resource stripIdentityHeaders 'Microsoft.ApiManagement/service/policyFragments@2024-05-01' = {
  parent: apim
  name: 'strip-identity-headers'
  properties: {
    description: 'Removes client-supplied identity, tenant and function-key headers.'
    format: 'xml'
    value: loadTextContent('../../../apim-policies/fragments/strip-identity-headers.xml')
  }
}

resource correlationId 'Microsoft.ApiManagement/service/policyFragments@2024-05-01' = {
  parent: apim
  name: 'correlation-id'
  properties: {
    description: 'Keeps or creates x-correlation-id and passes it on.'
    format: 'xml'
    value: loadTextContent('../../../apim-policies/fragments/correlation-id.xml')
  }
}

resource forwardToFunctionApp 'Microsoft.ApiManagement/service/policyFragments@2024-05-01' = {
  parent: apim
  name: 'forward-to-function-app'
  properties: {
    description: 'Routes to the function app backend with its function key.'
    format: 'xml'
    value: loadTextContent('../../../apim-policies/fragments/forward-to-function-app.xml')
  }
  dependsOn: [
    backend
    functionKeyValue
  ]
}

resource problemResponse 'Microsoft.ApiManagement/service/policyFragments@2024-05-01' = {
  parent: apim
  name: 'problem-response'
  properties: {
    description: 'Answers the gateway\'s own errors with an RFC 9457 problem document.'
    format: 'xml'
    value: loadTextContent('../../../apim-policies/fragments/problem-response.xml')
  }
}

resource externalApi 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: apim
  name: 'customer-platform-external'
  properties: {
    displayName: 'Customer platform (clients)'
    description: 'For the platform\'s client applications; tokens from Entra External ID.'
    path: externalApiPath
    protocols: [
      'https'
    ]
    subscriptionRequired: false
    apiType: 'http'
    format: 'openapi+json'
    value: loadTextContent('../../../apim-policies/openapi.json')
  }
}

resource internalApi 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: apim
  name: 'customer-platform-internal'
  properties: {
    displayName: 'Customer platform (employees)'
    description: 'For employees\' tools; tokens from the organisation\'s Entra ID tenant.'
    path: internalApiPath
    protocols: [
      'https'
    ]
    subscriptionRequired: false
    apiType: 'http'
    format: 'openapi+json'
    value: loadTextContent('../../../apim-policies/openapi.json')
  }
}

// PayPal's webhook: external API only (PayPal calls /api/v1/payments/webhooks/paypal). The
// operation comes with the import of apim-policies/openapi.json (its operationId is its name);
// it is declared again under that same name so its policy can be attached: a second operation
// with the same method and URL template would be refused.
resource paymentWebhookOperation 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' = {
  parent: externalApi
  name: 'receivePaymentWebhook'
  properties: {
    displayName: 'Payment provider webhook'
    description: 'Called by the payment provider (PayPal), not by users: no token; the handler verifies the provider\'s signature.'
    method: 'POST'
    urlTemplate: '/v1/payments/webhooks/{provider}'
    templateParameters: [
      {
        name: 'provider'
        type: 'string'
        required: true
      }
    ]
  }
}

// Replaces the API's inbound policy for this one operation (no <base /> in <inbound>).
resource paymentWebhookPolicy 'Microsoft.ApiManagement/service/apis/operations/policies@2024-05-01' = {
  parent: paymentWebhookOperation
  name: 'policy'
  properties: {
    format: 'xml'
    value: loadTextContent('../../../apim-policies/external/payment-webhook.xml')
  }
  dependsOn: [
    stripIdentityHeaders
    correlationId
    forwardToFunctionApp
    problemResponse
  ]
}

resource externalApiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: externalApi
  name: 'policy'
  properties: {
    format: 'xml'
    value: externalPolicy
  }
  dependsOn: [
    stripIdentityHeaders
    correlationId
    forwardToFunctionApp
    problemResponse
    externalOpenIdConfig
    externalIssuer
    externalAudience
  ]
}

resource internalApiPolicy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: internalApi
  name: 'policy'
  properties: {
    format: 'xml'
    value: internalPolicy
  }
  dependsOn: [
    stripIdentityHeaders
    correlationId
    forwardToFunctionApp
    problemResponse
    internalOpenIdConfig
    internalIssuer
    internalAudience
  ]
}

resource externalProduct 'Microsoft.ApiManagement/service/products@2024-05-01' = {
  parent: apim
  name: 'external'
  properties: {
    displayName: 'External (clients)'
    description: 'Client applications of the platform. Authenticated by Entra External ID tokens, no subscription key.'
    subscriptionRequired: false
    state: 'published'
  }
}

resource internalProduct 'Microsoft.ApiManagement/service/products@2024-05-01' = {
  parent: apim
  name: 'internal'
  properties: {
    displayName: 'Internal (employees)'
    description: 'Employees\' tools. Authenticated by Entra ID tokens, no subscription key.'
    subscriptionRequired: false
    state: 'published'
  }
}

resource externalProductApi 'Microsoft.ApiManagement/service/products/apis@2024-05-01' = {
  parent: externalProduct
  name: externalApi.name
}

resource internalProductApi 'Microsoft.ApiManagement/service/products/apis@2024-05-01' = {
  parent: internalProduct
  name: internalApi.name
}

// preview API: Microsoft.Insights/diagnosticSettings has no newer version than 2021-05-01-preview, the first
// with categoryGroup and the one the Azure Verified Modules use; its only GA version (2016-09-01) predates them.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: apim
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        categoryGroup: 'allLogs'
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

output name string = apim.name
output gatewayUrl string = apim.properties.gatewayUrl
output externalApiUrl string = '${apim.properties.gatewayUrl}/${externalApiPath}'
output internalApiUrl string = '${apim.properties.gatewayUrl}/${internalApiPath}'
