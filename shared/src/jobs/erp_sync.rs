//! What both ERP syncs check first: an ERP configured, and tenants it feeds.

use crate::erp::ErpClient;

use super::run::Run;

/// The ERP to sync from, or `None` (noted in the report) when none is configured or no tenant
/// is linked to it (`ERP_TENANTS`): the run then has nothing to do.
pub(crate) fn erp_to_sync(run: &mut Run<'_>) -> Option<ErpClient> {
    let Some(erp) = run.context.erp.clone() else {
        run.note("erp", "not configured: nothing to sync");
        return None;
    };
    if run.context.erp_tenants.is_empty() {
        run.note(
            "erp",
            "no tenant linked to the ERP (ERP_TENANTS): nothing to sync",
        );
        return None;
    }
    Some(erp)
}
