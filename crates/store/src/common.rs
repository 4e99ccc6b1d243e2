//! Row shapes and conversions shared by both backends (no SQL here).

use std::collections::{BTreeMap, BTreeSet};

use lakests_core::store::{
    Grant, LoginAudit, LoginOutcome, RemovedIdentity, StoreError, UserRecord,
};

/// `users` joined with `user_groups`: one row per (user, group), or one row with no group.
pub(crate) type UserRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
);

/// The columns of `login_audit`, without the id.
pub(crate) type AuditRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// The columns of `grants`.
pub(crate) type GrantRow = (String, String, String, i64);

/// A backend failure described by a fixed message.
pub(crate) fn backend_msg(message: impl Into<String>) -> StoreError {
    StoreError::Backend(message.into().into())
}

/// A backend failure caused by a database error.
pub(crate) fn backend(error: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// Whether the error is a unique (or primary key) violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Group names sorted and without duplicates, as stored and as returned.
pub(crate) fn normalize_groups(groups: &[String]) -> BTreeSet<&str> {
    groups.iter().map(String::as_str).collect()
}

/// Folds joined user rows into records, ordered by username (byte order, the same on every
/// backend whatever the database collation), groups sorted and deduplicated.
pub(crate) fn fold_users(rows: Vec<UserRow>) -> Vec<UserRecord> {
    let mut users: BTreeMap<String, (UserRecord, BTreeSet<String>)> = BTreeMap::new();
    for (username, external_id, email, friendly_name, created_at, group) in rows {
        let entry = users.entry(username.clone()).or_insert_with(|| {
            let record = UserRecord {
                username,
                external_id,
                email,
                friendly_name,
                groups: Vec::new(),
                created_at,
            };
            (record, BTreeSet::new())
        });
        if let Some(group) = group {
            entry.1.insert(group);
        }
    }
    users
        .into_values()
        .map(|(mut record, groups)| {
            record.groups = groups.into_iter().collect();
            record
        })
        .collect()
}

/// The one user of a query by a unique key.
pub(crate) fn fold_one_user(rows: Vec<UserRow>) -> Option<UserRecord> {
    fold_users(rows).into_iter().next()
}

/// An audit record from its row.
/// A `removed_identities` row: (external_id, username, removed_at).
pub(crate) fn removed_identity_from_row(row: (String, String, i64)) -> RemovedIdentity {
    let (external_id, username, removed_at) = row;
    RemovedIdentity {
        external_id,
        username,
        removed_at,
    }
}

pub(crate) fn audit_from_row(row: AuditRow) -> Result<LoginAudit, StoreError> {
    let (at, outcome, reason, external_id, username, client_addr, request_id) = row;
    let outcome = LoginOutcome::parse(&outcome)
        .ok_or_else(|| backend_msg(format!("login_audit holds an unknown outcome {outcome:?}")))?;
    Ok(LoginAudit {
        at,
        outcome,
        reason,
        external_id,
        username,
        client_addr,
        request_id,
    })
}

/// The grant of a row taken by `take_grant`, if it has not expired at `now`.
pub(crate) fn live_grant(row: Option<GrantRow>, now: i64) -> Option<Grant> {
    let (kind, key, payload, expires_at) = row?;
    (expires_at > now).then_some(Grant {
        kind,
        key,
        payload,
        expires_at,
    })
}

/// The message of [`StoreError::AlreadyExists`] for a taken grant key. The key itself is a
/// secret (a state value or an authorization code), so only the kind is named.
pub(crate) fn grant_exists(kind: &str) -> StoreError {
    StoreError::AlreadyExists(format!("grant of kind {kind:?} with this key"))
}

/// The message of [`StoreError::AlreadyExists`] for a taken username.
pub(crate) fn user_exists(username: &str) -> StoreError {
    StoreError::AlreadyExists(format!("user {username:?}"))
}

/// The message of [`StoreError::AlreadyExists`] for a taken external id.
pub(crate) fn external_id_exists(external_id: Option<&str>) -> StoreError {
    StoreError::AlreadyExists(format!("external id {:?}", external_id.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, group: Option<&str>) -> UserRow {
        (user.into(), None, None, None, 1, group.map(Into::into))
    }

    #[test]
    fn folding_orders_users_by_bytes_and_groups_sorted_without_duplicates() {
        let rows = vec![
            row("b", Some("z")),
            row("a", None),
            row("b", Some("a")),
            row("B", None),
            row("b", Some("z")),
        ];
        let users = fold_users(rows);
        let names: Vec<_> = users.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, ["B", "a", "b"]);
        assert_eq!(users[2].groups, ["a", "z"]);
        assert!(users[1].groups.is_empty());
    }

    #[test]
    fn an_expired_grant_row_is_not_live() {
        let row = ("k".to_string(), "key".to_string(), "p".to_string(), 100);
        assert!(live_grant(Some(row.clone()), 100).is_none());
        assert_eq!(live_grant(Some(row), 99).map(|g| g.expires_at), Some(100));
        assert!(live_grant(None, 0).is_none());
    }

    #[test]
    fn an_unknown_audit_outcome_is_a_backend_error() {
        let row = (
            1,
            "maybe".into(),
            "r".into(),
            None,
            None,
            None,
            "req".into(),
        );
        assert!(matches!(audit_from_row(row), Err(StoreError::Backend(_))));
    }
}
