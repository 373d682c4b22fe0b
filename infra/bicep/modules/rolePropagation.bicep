// A pause until new role assignments have taken effect, for what must not run before they have.
// Azure RBAC can take several minutes (up to about 10) to apply a new assignment in every service;
// a function app host that starts, or an API Management named value that reads Key Vault, in that
// window fails instead of waiting. Bicep has no wait, so this is a deployment script (an Azure CLI
// container that Azure runs and removes) that only sleeps; it touches nothing.
//
// The script runs again only when `trigger` changes (new or changed role assignments) or after
// the deployment script resource expires (retentionInterval): a redeploy within that time does not
// wait. It needs the resource provider Microsoft.ContainerInstance registered in the subscription
// and lets Azure create a temporary storage account and container instance beside it, deleted when
// the script ends (cleanupPreference).

@description('Azure region (one where Azure Container Instances is available).')
param location string

@description('Deployment script name.')
param name string

@description('Tags applied to the script and its temporary resources.')
param tags object

@description('Seconds to wait.')
@minValue(1)
@maxValue(1800)
param seconds int

@description('A value that changes whenever the role assignments waited for change (their ids).')
param trigger string

resource wait 'Microsoft.Resources/deploymentScripts@2023-08-01' = {
  name: name
  location: location
  tags: tags
  kind: 'AzureCLI'
  properties: {
    azCliVersion: '2.61.0'
    scriptContent: 'sleep "$WAIT_SECONDS"'
    environmentVariables: [
      {
        name: 'WAIT_SECONDS'
        value: string(seconds)
      }
    ]
    forceUpdateTag: uniqueString(trigger)
    timeout: 'PT${seconds + 900}S'
    cleanupPreference: 'Always'
    retentionInterval: 'PT26H'
  }
}

output waitedSeconds int = seconds
