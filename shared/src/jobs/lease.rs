//! Job leases: one run of a job at a time, across processes and instances.
//!
//! A run takes the lease before it changes anything, extends it with every batch it commits
//! (the store writes the batch only while the lease is still the run's: a fence), and gives it
//! up at the end. A lease expires `ttl` after its last extension, so a crashed holder on
//! another instance blocks the job at most that long; a holder on this machine whose process is
//! gone (killed) is taken over at once. The holder id names the machine and process:
//! `{host}:{pid}:{run id}`.

use std::time::Duration;

use crate::store::jobs::{JobStateStore, Lease, LeaseGrant};
use crate::store::StoreResult;

/// How long a lease lasts without an extension.
pub(crate) const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);

/// This machine's name: the Functions instance id in Azure, else the host name.
pub fn machine() -> String {
    std::env::var("WEBSITE_INSTANCE_ID")
        .ok()
        .filter(|id| !id.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

/// The holder id of a run of this process.
pub(crate) fn holder_id(run_id: &str) -> String {
    format!("{}:{}:{run_id}", machine(), std::process::id())
}

/// True when `holder` is a process of this machine that no longer runs (killed, crashed).
pub(crate) fn holder_is_dead_here(holder: &str) -> bool {
    let mut parts = holder.splitn(3, ':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    if host != machine() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    process_is_gone(pid)
}

#[cfg(target_os = "linux")]
fn process_is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name; `Z` (zombie) or `X` (dead).
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
        Err(_) => true,
    }
}

#[cfg(not(target_os = "linux"))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

/// Takes the lease on `job` for `holder`, taking over from a dead local holder; otherwise
/// reports who holds it.
pub(crate) async fn acquire<S: JobStateStore + ?Sized>(
    store: &S,
    job: &str,
    holder: &str,
    ttl: Duration,
) -> StoreResult<Result<(), Lease>> {
    match store.acquire_lease(job, holder, ttl, None).await? {
        LeaseGrant::Acquired => Ok(Ok(())),
        LeaseGrant::HeldBy(lease) if holder_is_dead_here(&lease.holder) => {
            tracing::warn!(job, previous = %lease.holder, "taking over the lease of a process that is gone");
            match store
                .acquire_lease(job, holder, ttl, Some(&lease.holder))
                .await?
            {
                LeaseGrant::Acquired => Ok(Ok(())),
                LeaseGrant::HeldBy(lease) => Ok(Err(lease)),
            }
        }
        LeaseGrant::HeldBy(lease) => Ok(Err(lease)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_of_this_process_or_other_machines_are_not_dead() {
        assert!(!holder_is_dead_here(&holder_id("r1")));
        assert!(!holder_is_dead_here("other-machine:1:r1"));
        assert!(!holder_is_dead_here("garbage"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_finished_local_process_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(holder_is_dead_here(&format!("{}:{pid}:r1", machine())));
    }
}
