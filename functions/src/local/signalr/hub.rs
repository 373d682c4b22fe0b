//! The hub's membership: open connections with their user, and groups of users. Messages of
//! the `signalR` output binding reach every connection of a user, of a group's users, or one
//! connection; group actions change membership (as in Azure SignalR Service, a user's group
//! membership outlives their connections and covers the connections they open later).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use shared::protocol::{GroupAction, SignalRAction};
use tokio::sync::mpsc;

/// Frames a connection's writer sends (JSON hub protocol text, record separator included).
pub type Outbox = mpsc::UnboundedSender<String>;

/// The JSON hub protocol's record separator.
pub const RECORD_SEPARATOR: char = '\u{1e}';

#[derive(Default)]
struct Members {
    /// connection id -> (user id, its writer)
    connections: BTreeMap<String, (String, Outbox)>,
    /// group name -> user ids
    user_groups: BTreeMap<String, BTreeSet<String>>,
    /// group name -> connection ids
    connection_groups: BTreeMap<String, BTreeSet<String>>,
}

/// The hub's users, connections and groups (cheap to clone, shared).
#[derive(Clone, Default)]
pub struct Hub {
    members: Arc<Mutex<Members>>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Members> {
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers an open connection of `user_id`.
    pub fn join(&self, connection_id: &str, user_id: &str, outbox: Outbox) {
        self.lock()
            .connections
            .insert(connection_id.to_owned(), (user_id.to_owned(), outbox));
    }

    /// Forgets a closed connection (its user keeps their groups).
    pub fn leave(&self, connection_id: &str) {
        let mut members = self.lock();
        members.connections.remove(connection_id);
        for connections in members.connection_groups.values_mut() {
            connections.remove(connection_id);
        }
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.lock().connections.len()
    }

    /// Applies one output item; returns how many connections a message reached.
    pub fn apply(&self, action: &SignalRAction) -> usize {
        match action {
            SignalRAction::Group {
                action,
                user_id,
                connection_id,
                group_name,
            } => {
                self.change_group(
                    *action,
                    user_id.as_deref(),
                    connection_id.as_deref(),
                    group_name.as_deref(),
                );
                0
            }
            SignalRAction::Message {
                target,
                arguments,
                user_id,
                group_name,
                connection_id,
            } => {
                let frame = invocation_frame(target, arguments);
                let members = self.lock();
                let receivers = members.receivers(
                    user_id.as_deref(),
                    group_name.as_deref(),
                    connection_id.as_deref(),
                );
                receivers
                    .iter()
                    .filter(|outbox| outbox.send(frame.clone()).is_ok())
                    .count()
            }
        }
    }

    fn change_group(
        &self,
        action: GroupAction,
        user_id: Option<&str>,
        connection_id: Option<&str>,
        group: Option<&str>,
    ) {
        let mut members = self.lock();
        let (key, groups) = match (user_id, connection_id) {
            (Some(user), _) => (user, &mut members.user_groups),
            (None, Some(connection)) => (connection, &mut members.connection_groups),
            (None, None) => return,
        };
        match (action, group) {
            (GroupAction::Add, Some(group)) => {
                groups
                    .entry(group.to_owned())
                    .or_default()
                    .insert(key.to_owned());
            }
            (GroupAction::Remove, Some(group)) => {
                if let Some(set) = groups.get_mut(group) {
                    set.remove(key);
                }
            }
            (GroupAction::RemoveAll, _) => {
                for set in groups.values_mut() {
                    set.remove(key);
                }
            }
            (GroupAction::Add | GroupAction::Remove, None) => {}
        }
    }
}

impl Members {
    /// The writers a message addressed this way reaches (everyone when nothing is named).
    fn receivers(
        &self,
        user: Option<&str>,
        group: Option<&str>,
        connection: Option<&str>,
    ) -> Vec<Outbox> {
        let by_user = |users: &BTreeSet<String>| -> Vec<Outbox> {
            self.connections
                .values()
                .filter(|(owner, _)| users.contains(owner))
                .map(|(_, outbox)| outbox.clone())
                .collect()
        };
        match (user, group, connection) {
            (Some(user), _, _) => by_user(&BTreeSet::from([user.to_owned()])),
            (None, Some(group), _) => {
                let mut found = self.user_groups.get(group).map(by_user).unwrap_or_default();
                let connections = self.connection_groups.get(group);
                found.extend(
                    self.connections
                        .iter()
                        .filter(|(id, _)| connections.is_some_and(|set| set.contains(*id)))
                        .map(|(_, (_, outbox))| outbox.clone()),
                );
                found
            }
            (None, None, Some(connection)) => self
                .connections
                .get(connection)
                .map(|(_, outbox)| vec![outbox.clone()])
                .unwrap_or_default(),
            (None, None, None) => self
                .connections
                .values()
                .map(|(_, outbox)| outbox.clone())
                .collect(),
        }
    }
}

/// A type 1 (invocation) frame without an invocation id: the client does not answer it.
pub fn invocation_frame(target: &str, arguments: &[Value]) -> String {
    let mut text = json!({"type": 1, "target": target, "arguments": arguments}).to_string();
    text.push(RECORD_SEPARATOR);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(hub: &Hub, id: &str, user: &str) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        hub.join(id, user, tx);
        rx
    }

    #[test]
    fn messages_reach_the_user_or_the_group_and_no_one_else() {
        let hub = Hub::default();
        let mut ada = connect(&hub, "c1", "t1:customer:ada");
        let mut bob = connect(&hub, "c2", "t2:customer:ada");
        let mut boss = connect(&hub, "c3", "t1:employee:e");
        let to_ada = SignalRAction::to_user("t1:customer:ada", "notification", json!({"id": "n1"}));
        assert_eq!(hub.apply(&to_ada), 1);
        assert!(ada.try_recv().unwrap().contains("\"n1\""));
        assert!(bob.try_recv().is_err());

        hub.apply(&SignalRAction::add_user_to_group(
            "t1:employee:e",
            "t1:role:admin",
        ));
        let to_admins =
            SignalRAction::to_group("t1:role:admin", "notification", json!({"id": "n2"}));
        assert_eq!(hub.apply(&to_admins), 1);
        assert!(boss.try_recv().unwrap().ends_with('\u{1e}'));
        assert!(ada.try_recv().is_err());

        hub.leave("c3");
        assert_eq!(hub.apply(&to_admins), 0);
        let mut again = connect(&hub, "c4", "t1:employee:e");
        assert_eq!(
            hub.apply(&to_admins),
            1,
            "membership outlives the connection"
        );
        assert!(again.try_recv().is_ok());
        hub.apply(&SignalRAction::Group {
            action: GroupAction::RemoveAll,
            user_id: Some("t1:employee:e".into()),
            connection_id: None,
            group_name: None,
        });
        assert_eq!(hub.apply(&to_admins), 0);
    }
}
