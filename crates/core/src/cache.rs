//! Read caches that never serve what a write has changed (lakeFS's `auth.cache`, made safe).
//!
//! Every cached value is stamped with the store's *generation*, read before the value was read
//! from the store. A [`ChangeFeed`] moves the generation forward whenever something cached may
//! have changed: at once for every write made through this process's store ([`CachingStore`]
//! bumps it after the write), and for writes made elsewhere (the CLI on the same SQLite file,
//! another replica on the same PostgreSQL) as soon as the backend sees them. A value is served
//! only while its stamp equals the current generation, so a removed, re-created or revoked
//! user is refused on the next request, never after a TTL. When the feed cannot vouch for the
//! generation (a PostgreSQL listener reconnecting), it answers `None` and every read goes to
//! the store.
//!
//! The TTL (`auth.cache.ttl` plus jitter) and the size bound remain, as limits on memory, not
//! as the way changes are noticed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::directory::{
    CredentialRecord, Directory, DirectoryUser, ExternalPrincipalRecord, GroupRecord, Page,
    PolicyRecord, UserFilter,
};
use crate::store::{Grant, LoginAudit, RemovedIdentity, Store, StoreError, UserRecord};

/// Where the generation of a store comes from.
#[async_trait]
pub trait ChangeFeed: Send + Sync + std::fmt::Debug {
    /// The current generation: it differs from every earlier answer once anything cached may
    /// have changed since, here or anywhere the store is shared, before the call began. `None`
    /// when changes made elsewhere cannot be seen right now: nothing may be served from a cache
    /// then.
    async fn generation(&self) -> Option<u64>;
    /// Records a write made by this process (called after the write has completed).
    fn bump(&self);
}

/// A generation only this process moves: right when this process is the only writer (tests,
/// and the reference point of every other feed).
#[derive(Debug, Default)]
pub struct LocalGeneration(AtomicU64);

impl LocalGeneration {
    /// Starts at 0.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ChangeFeed for LocalGeneration {
    async fn generation(&self) -> Option<u64> {
        Some(self.0.load(Ordering::SeqCst))
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How long entries live and how many there are at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Seconds an entry lives at most (`auth.cache.ttl`).
    pub ttl_seconds: i64,
    /// Up to this many seconds more, at random (`auth.cache.jitter`).
    pub jitter_seconds: i64,
    /// Entries per cache at most (`auth.cache.size`).
    pub capacity: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            ttl_seconds: 20,
            jitter_seconds: 3,
            capacity: 1024,
        }
    }
}

struct Entry<V> {
    value: V,
    generation: u64,
    expires_at: i64,
}

/// A bounded map of values stamped with the generation they were read under.
pub struct Memo<K, V> {
    limits: CacheLimits,
    entries: Mutex<HashMap<K, Entry<V>>>,
    hits: AtomicU64,
}

impl<K, V> std::fmt::Debug for Memo<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    /// An empty cache.
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits: CacheLimits {
                capacity: limits.capacity.max(1),
                ttl_seconds: limits.ttl_seconds.max(0),
                jitter_seconds: limits.jitter_seconds.max(0),
            },
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    /// How many lookups were answered from memory.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn jitter(&self) -> i64 {
        if self.limits.jitter_seconds == 0 {
            return 0;
        }
        let random = uuid::Uuid::new_v4().as_u128();
        let span = u128::from(self.limits.jitter_seconds.unsigned_abs()) + 1;
        i64::try_from(random % span).unwrap_or(0)
    }

    /// The value stored under `key` if it was read under `generation` and has not expired at
    /// `now`.
    pub fn get<Q>(&self, key: &Q, generation: u64, now: i64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, now, Some(generation))
            .map(|(value, _)| value)
    }

    /// The value stored under `key` and the generation it was read under, whatever the
    /// generation is now, if it has not expired at `now`: for a caller that checks the
    /// generation later itself ([`Store::find_user_for_login`]).
    pub fn peek<Q>(&self, key: &Q, now: i64) -> Option<(V, u64)>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, now, None)
    }

    /// An entry alive at `now` (and read under `generation`, when given), counted as a hit.
    fn lookup<Q>(&self, key: &Q, now: i64, generation: Option<u64>) -> Option<(V, u64)>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let hit = entries
            .get(key)
            .filter(|e| e.expires_at > now && generation.is_none_or(|g| g == e.generation))
            .map(|e| (e.value.clone(), e.generation));
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Remembers `value`, read from the store under `generation`, from `now` until the TTL (or
    /// `not_after`, if earlier). When full, stale and expired entries go first, then
    /// everything.
    pub fn put(&self, key: K, value: V, generation: u64, now: i64, not_after: Option<i64>) {
        let mut expires_at = now
            .saturating_add(self.limits.ttl_seconds)
            .saturating_add(self.jitter());
        if let Some(limit) = not_after {
            expires_at = expires_at.min(limit);
        }
        if expires_at <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.limits.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| e.generation == generation && e.expires_at > now);
            if entries.len() >= self.limits.capacity {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                generation,
                expires_at,
            },
        );
    }

    /// How many entries are held (stale ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Store`] that answers its hot reads from memory while the generation says nothing has
/// changed: `get_user`, `find_user_by_external_id`, `is_token_revoked`, `get_directory_user`,
/// `get_credential` and `list_effective_policies` (the bearer check, the STS login's lookup and
/// the authorization API's reads on lakeFS's request path). Every write it passes on bumps the
/// generation once it has completed, whatever its outcome; audit records, grants and token id
/// claims are not cached and do not bump it.
pub struct CachingStore {
    inner: Arc<dyn Store>,
    feed: Arc<dyn ChangeFeed>,
    clock: Arc<dyn crate::Clock>,
    users: Memo<String, Option<UserRecord>>,
    users_by_external_id: Memo<String, Option<UserRecord>>,
    revocations: Memo<(String, String, i64), bool>,
    directory_users: Memo<String, Option<DirectoryUser>>,
    credentials: Memo<String, Option<CredentialRecord>>,
    effective_policies: Memo<(String, Page), Vec<PolicyRecord>>,
}

impl std::fmt::Debug for CachingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingStore")
            .field("feed", &self.feed)
            .finish_non_exhaustive()
    }
}

impl CachingStore {
    /// Caches the hot reads of `inner`, trusting `feed` for changes.
    pub fn new(
        inner: Arc<dyn Store>,
        feed: Arc<dyn ChangeFeed>,
        clock: Arc<dyn crate::Clock>,
        limits: CacheLimits,
    ) -> Self {
        Self {
            inner,
            feed,
            clock,
            users: Memo::new(limits),
            users_by_external_id: Memo::new(limits),
            revocations: Memo::new(limits),
            directory_users: Memo::new(limits),
            credentials: Memo::new(limits),
            effective_policies: Memo::new(limits),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Passes a write on, then moves the generation (also when the write failed: it may have
    /// been applied before the failure was seen).
    fn write<T>(&self, done: Result<T, StoreError>) -> Result<T, StoreError> {
        self.feed.bump();
        done
    }
}

/// Reads through `$memo` under key `$key`: served from memory when the generation allows,
/// else read with `$read` and remembered under the generation seen before the read.
macro_rules! cached {
    ($self:ident, $memo:ident, $key:expr, $lookup:expr, $read:expr) => {{
        let now = $self.clock.now();
        match $self.feed.generation().await {
            Some(generation) => {
                if let Some(hit) = $self.$memo.get($lookup, generation, now) {
                    return Ok(hit);
                }
                let value = $read.await?;
                $self.$memo.put($key, value.clone(), generation, now, None);
                Ok(value)
            }
            None => $read.await,
        }
    }};
}

#[async_trait]
impl Store for CachingStore {
    async fn generation(&self) -> Option<u64> {
        self.feed.generation().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.write(self.inner.create_user(user).await)
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        cached!(
            self,
            users,
            username.to_owned(),
            username,
            self.inner.get_user(username)
        )
    }

    async fn find_user_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        cached!(
            self,
            users_by_external_id,
            external_id.to_owned(),
            external_id,
            self.inner.find_user_by_external_id(external_id)
        )
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.inner.list_users().await
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        self.write(self.inner.delete_user(username).await)
    }

    async fn set_friendly_name(
        &self,
        username: &str,
        friendly_name: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write(self.inner.set_friendly_name(username, friendly_name).await)
    }

    // Removal marks are read only when a login would provision a user: never cached, and
    // readmitting changes nothing that is.
    async fn removed_identity(
        &self,
        external_id: &str,
    ) -> Result<Option<RemovedIdentity>, StoreError> {
        self.inner.removed_identity(external_id).await
    }

    async fn list_removed_identities(&self) -> Result<Vec<RemovedIdentity>, StoreError> {
        self.inner.list_removed_identities().await
    }

    async fn readmit_identity(&self, external_id: &str) -> Result<bool, StoreError> {
        self.inner.readmit_identity(external_id).await
    }

    async fn append_audit(&self, record: &LoginAudit) -> Result<(), StoreError> {
        self.inner.append_audit(record).await
    }

    fn checks_generation_in_audit(&self) -> bool {
        self.inner.checks_generation_in_audit()
    }

    /// A user cached for this external id is answered without reading the generation when the
    /// store checks it in the audit write ([`Store::checks_generation_in_audit`]); anything
    /// else (no entry, no user, a store that cannot check) takes the checked lookup.
    async fn find_user_for_login(
        &self,
        external_id: &str,
    ) -> Result<(Option<UserRecord>, Option<u64>), StoreError> {
        if self.inner.checks_generation_in_audit()
            && let Some((Some(user), generation)) = self
                .users_by_external_id
                .peek(external_id, self.clock.now())
        {
            return Ok((Some(user), Some(generation)));
        }
        Ok((self.find_user_by_external_id(external_id).await?, None))
    }

    async fn append_audit_if_unchanged(
        &self,
        record: &LoginAudit,
        generation: u64,
    ) -> Result<bool, StoreError> {
        self.inner
            .append_audit_if_unchanged(record, generation)
            .await
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<LoginAudit>, StoreError> {
        self.inner.list_audit(limit).await
    }

    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.inner.put_grant(grant).await
    }

    async fn take_grant(
        &self,
        kind: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<Grant>, StoreError> {
        self.inner.take_grant(kind, key, now).await
    }

    async fn purge_expired_grants(&self, now: i64) -> Result<u64, StoreError> {
        self.inner.purge_expired_grants(now).await
    }

    async fn purge_audit_before(&self, before: i64) -> Result<u64, StoreError> {
        self.inner.purge_audit_before(before).await
    }

    async fn revoke_user_tokens(
        &self,
        username: &str,
        issued_up_to: i64,
    ) -> Result<(), StoreError> {
        self.write(self.inner.revoke_user_tokens(username, issued_up_to).await)
    }

    async fn revoke_token(&self, jti: &str, revoked_at: i64) -> Result<bool, StoreError> {
        self.write(self.inner.revoke_token(jti, revoked_at).await)
    }

    async fn is_token_revoked(
        &self,
        username: &str,
        jti: &str,
        issued_at: i64,
    ) -> Result<bool, StoreError> {
        let key = (username.to_owned(), jti.to_owned(), issued_at);
        cached!(
            self,
            revocations,
            key.clone(),
            &key,
            self.inner.is_token_revoked(username, jti, issued_at)
        )
    }
}

#[async_trait]
impl Directory for CachingStore {
    async fn create_directory_user(&self, user: &DirectoryUser) -> Result<(), StoreError> {
        self.write(self.inner.create_directory_user(user).await)
    }

    async fn get_directory_user(
        &self,
        username: &str,
    ) -> Result<Option<DirectoryUser>, StoreError> {
        cached!(
            self,
            directory_users,
            username.to_owned(),
            username,
            self.inner.get_directory_user(username)
        )
    }

    async fn list_directory_users(
        &self,
        filter: &UserFilter,
        page: &Page,
    ) -> Result<Vec<DirectoryUser>, StoreError> {
        self.inner.list_directory_users(filter, page).await
    }

    async fn update_user_profile(
        &self,
        username: &str,
        email: Option<&str>,
        friendly_name: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write(
            self.inner
                .update_user_profile(username, email, friendly_name)
                .await,
        )
    }

    async fn set_user_groups(&self, username: &str, groups: &[String]) -> Result<bool, StoreError> {
        self.write(self.inner.set_user_groups(username, groups).await)
    }

    async fn create_group(&self, group: &GroupRecord) -> Result<(), StoreError> {
        self.write(self.inner.create_group(group).await)
    }

    async fn get_group(&self, name: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.inner.get_group(name).await
    }

    async fn delete_group(&self, name: &str) -> Result<bool, StoreError> {
        self.write(self.inner.delete_group(name).await)
    }

    async fn list_groups(&self, page: &Page) -> Result<Vec<GroupRecord>, StoreError> {
        self.inner.list_groups(page).await
    }

    async fn add_group_member(&self, group: &str, username: &str) -> Result<(), StoreError> {
        self.write(self.inner.add_group_member(group, username).await)
    }

    async fn remove_group_member(&self, group: &str, username: &str) -> Result<bool, StoreError> {
        self.write(self.inner.remove_group_member(group, username).await)
    }

    async fn list_group_members(
        &self,
        group: &str,
        page: &Page,
    ) -> Result<Vec<DirectoryUser>, StoreError> {
        self.inner.list_group_members(group, page).await
    }

    async fn list_user_groups(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<GroupRecord>, StoreError> {
        self.inner.list_user_groups(username, page).await
    }

    async fn create_policy(&self, policy: &PolicyRecord) -> Result<(), StoreError> {
        self.write(self.inner.create_policy(policy).await)
    }

    async fn update_policy(&self, policy: &PolicyRecord) -> Result<bool, StoreError> {
        self.write(self.inner.update_policy(policy).await)
    }

    async fn get_policy(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
        self.inner.get_policy(name).await
    }

    async fn delete_policy(&self, name: &str) -> Result<bool, StoreError> {
        self.write(self.inner.delete_policy(name).await)
    }

    async fn list_policies(&self, page: &Page) -> Result<Vec<PolicyRecord>, StoreError> {
        self.inner.list_policies(page).await
    }

    async fn attach_user_policy(&self, username: &str, policy: &str) -> Result<(), StoreError> {
        self.write(self.inner.attach_user_policy(username, policy).await)
    }

    async fn detach_user_policy(&self, username: &str, policy: &str) -> Result<bool, StoreError> {
        self.write(self.inner.detach_user_policy(username, policy).await)
    }

    async fn list_user_policies(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<PolicyRecord>, StoreError> {
        self.inner.list_user_policies(username, page).await
    }

    async fn list_effective_policies(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<PolicyRecord>, StoreError> {
        let key = (username.to_owned(), page.clone());
        cached!(
            self,
            effective_policies,
            key.clone(),
            &key,
            self.inner.list_effective_policies(username, page)
        )
    }

    async fn attach_group_policy(&self, group: &str, policy: &str) -> Result<(), StoreError> {
        self.write(self.inner.attach_group_policy(group, policy).await)
    }

    async fn detach_group_policy(&self, group: &str, policy: &str) -> Result<bool, StoreError> {
        self.write(self.inner.detach_group_policy(group, policy).await)
    }

    async fn list_group_policies(
        &self,
        group: &str,
        page: &Page,
    ) -> Result<Vec<PolicyRecord>, StoreError> {
        self.inner.list_group_policies(group, page).await
    }

    async fn create_credential(&self, credential: &CredentialRecord) -> Result<(), StoreError> {
        self.write(self.inner.create_credential(credential).await)
    }

    async fn get_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        cached!(
            self,
            credentials,
            access_key_id.to_owned(),
            access_key_id,
            self.inner.get_credential(access_key_id)
        )
    }

    async fn delete_credential(
        &self,
        username: &str,
        access_key_id: &str,
    ) -> Result<bool, StoreError> {
        self.write(self.inner.delete_credential(username, access_key_id).await)
    }

    async fn list_user_credentials(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        self.inner.list_user_credentials(username, page).await
    }

    async fn create_external_principal(
        &self,
        principal: &ExternalPrincipalRecord,
    ) -> Result<(), StoreError> {
        self.write(self.inner.create_external_principal(principal).await)
    }

    async fn get_external_principal(
        &self,
        id: &str,
    ) -> Result<Option<ExternalPrincipalRecord>, StoreError> {
        self.inner.get_external_principal(id).await
    }

    async fn delete_external_principal(
        &self,
        username: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        self.write(self.inner.delete_external_principal(username, id).await)
    }

    async fn list_user_external_principals(
        &self,
        username: &str,
        page: &Page,
    ) -> Result<Vec<ExternalPrincipalRecord>, StoreError> {
        self.inner
            .list_user_external_principals(username, page)
            .await
    }

    async fn claim_token_id(
        &self,
        token_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.inner.claim_token_id(token_id, expires_at, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(ttl: i64, capacity: usize) -> CacheLimits {
        CacheLimits {
            ttl_seconds: ttl,
            jitter_seconds: 0,
            capacity,
        }
    }

    #[test]
    fn entries_are_served_only_under_their_generation_and_before_expiry() {
        let m: Memo<String, u32> = Memo::new(limits(5, 10));
        m.put("a".into(), 1, 7, 100, None);
        assert_eq!(m.get("a", 7, 104), Some(1));
        assert_eq!(m.get("a", 8, 101), None, "another generation");
        assert_eq!(m.get("a", 7, 105), None, "expired");
        assert_eq!(m.get("b", 7, 100), None);
        m.put("c".into(), 3, 7, 100, Some(102));
        assert_eq!(m.get("c", 7, 101), Some(3));
        assert_eq!(m.get("c", 7, 102), None, "not after its own limit");
        m.put("d".into(), 4, 7, 100, Some(100));
        assert_eq!(m.get("d", 7, 99), None, "already expired: not stored");
    }

    #[test]
    fn jitter_spreads_expiry_within_its_bound() {
        let m: Memo<u32, u32> = Memo::new(CacheLimits {
            ttl_seconds: 5,
            jitter_seconds: 3,
            capacity: 1000,
        });
        let mut lifetimes = std::collections::BTreeSet::new();
        for i in 0..200 {
            m.put(i, i, 0, 100, None);
            let life = (100..120).find(|t| m.get(&i, 0, *t).is_none()).unwrap() - 100;
            assert!((5..=8).contains(&life), "{life}");
            lifetimes.insert(life);
        }
        assert!(lifetimes.len() > 1, "{lifetimes:?}");
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let m: Memo<u32, u32> = Memo::new(limits(60, 3));
        for i in 0..10 {
            m.put(i, i, 0, i64::from(i), None);
            assert!(m.len() <= 3);
        }
        assert_eq!(m.get(&9, 0, 9), Some(9));
    }

    #[tokio::test]
    async fn the_local_generation_moves_on_every_bump() {
        let g = LocalGeneration::new();
        let a = g.generation().await;
        g.bump();
        assert_ne!(g.generation().await, a);
    }
}
