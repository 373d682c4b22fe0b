// Log Analytics workspace and the workspace-based Application Insights component the Functions
// host sends telemetry to. Local (instrumentation-key) auth is off: the host authenticates with
// the app's managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING, role Monitoring Metrics
// Publisher, assigned in access.bicep). The alert rules on this telemetry are in alerts.bicep.

@description('Azure region.')
param location string

@description('Resource name prefix, e.g. custplat-dev.')
param namePrefix string

@description('Tags applied to every resource.')
param tags object

@description('Days Log Analytics keeps data (30 days are included in the ingestion price).')
@minValue(30)
@maxValue(730)
param retentionInDays int

@description('Daily ingestion cap in GB (-1 = no cap). A cap protects the bill from a log storm.')
param dailyQuotaGb int

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${namePrefix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    workspaceCapping: {
      dailyQuotaGb: dailyQuotaGb
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${namePrefix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

output workspaceId string = workspace.id
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
