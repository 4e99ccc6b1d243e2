//! A small, bounded, time-limited cache of users for the bearer-token hot path (lakeFS's
//! `auth.cache`): a token's user is looked up in the store at most once per TTL.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::UserRecord;

/// Users by username, each kept for `ttl_seconds` after it was read from the store.
#[derive(Debug)]
pub struct UserCache {
    ttl_seconds: i64,
    jitter_seconds: i64,
    capacity: usize,
    entries: Mutex<HashMap<String, (UserRecord, i64)>>,
}

impl UserCache {
    /// A cache of at most `capacity` users, each valid for `ttl_seconds`.
    pub fn new(ttl_seconds: i64, capacity: usize) -> Self {
        Self {
            ttl_seconds,
            jitter_seconds: 0,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Adds up to `jitter_seconds` at random to each entry's TTL (lakeFS's `auth.cache.jitter`),
    /// so that users read together do not all expire together.
    #[must_use]
    pub fn with_jitter(mut self, jitter_seconds: i64) -> Self {
        self.jitter_seconds = jitter_seconds.max(0);
        self
    }

    fn jitter(&self) -> i64 {
        if self.jitter_seconds == 0 {
            return 0;
        }
        let random = uuid::Uuid::new_v4().as_u128();
        let span = u128::from(self.jitter_seconds.unsigned_abs()) + 1;
        i64::try_from(random % span).unwrap_or(0)
    }

    /// The cached user, unless absent or expired at `now`.
    pub fn get(&self, username: &str, now: i64) -> Option<UserRecord> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(username)
            .filter(|(_, expires)| *expires > now)
            .map(|(u, _)| u.clone())
    }

    /// Remembers `user` from `now`. When full, expired entries go first, then everything.
    pub fn put(&self, user: UserRecord, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&user.username) {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        let expires = now
            .saturating_add(self.ttl_seconds)
            .saturating_add(self.jitter());
        entries.insert(user.username.clone(), (user, expires));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserRecord {
        UserRecord {
            username: name.into(),
            external_id: None,
            email: None,
            friendly_name: None,
            groups: vec![],
            created_at: 0,
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = UserCache::new(5, 10);
        c.put(user("a"), 100);
        assert!(c.get("a", 104).is_some());
        assert!(c.get("a", 105).is_none());
        assert!(c.get("b", 100).is_none());
    }

    #[test]
    fn jitter_spreads_expiry_within_its_bound() {
        let c = UserCache::new(5, 1000).with_jitter(3);
        let mut lifetimes = std::collections::BTreeSet::new();
        for i in 0..200 {
            let name = format!("u{i}");
            c.put(user(&name), 100);
            let life = (100..120).find(|t| c.get(&name, *t).is_none()).unwrap() - 100;
            assert!((5..=8).contains(&life), "{life}");
            lifetimes.insert(life);
        }
        assert!(
            lifetimes.len() > 1,
            "jitter varies the expiry: {lifetimes:?}"
        );
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let c = UserCache::new(60, 3);
        for (i, n) in ["a", "b", "c", "d"].into_iter().enumerate() {
            c.put(user(n), i as i64);
        }
        assert!(c.entries.lock().unwrap().len() <= 3);
        assert!(c.get("d", 4).is_some());
    }
}
