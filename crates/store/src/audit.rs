//! Group commit for PostgreSQL's login audit records: every login waits for its record's
//! commit (a record is never acknowledged before it is written), but records that arrive while
//! a commit is in progress share the next one: one multi-row `INSERT` (one transaction, one WAL
//! flush) for all of them instead of one each, by one writer task on one connection. SQLite's
//! records are written by the logins themselves (`crate::sqlite_audit`): there a writer task
//! only added thread hops (bench/NOTES.md, issue 14 targets 2 and 3).

use lakests_core::store::LoginAudit;
use tokio::sync::{mpsc, oneshot};

use crate::redact::chain;

/// A record waiting for its commit, the generation it may be written under only (see
/// [`AuditWriter::append_if_unchanged`]), and the caller to tell whether it was written.
type AuditJob = (
    LoginAudit,
    Option<u64>,
    oneshot::Sender<Result<bool, String>>,
);

/// Most records one `INSERT` carries.
const AUDIT_BATCH: usize = 64;

/// Times the writer yields between its first record and taking the batch.
const LINGER_YIELDS: usize = 4;

/// The audit `INSERT`: one row per element of its arrays (all of one length).
const INSERT: &str = "INSERT INTO login_audit \
     (at, outcome, reason, external_id, username, client_addr, request_id) \
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[])";

/// [`INSERT`] for a batch in which some records may only be written under an expected
/// generation (`$8`, null for a record without one); returns the generation it saw.
const INSERT_CHECKED: &str = "WITH g AS (SELECT value FROM lakests_generation), \
     ins AS (INSERT INTO login_audit \
     (at, outcome, reason, external_id, username, client_addr, request_id) \
     SELECT v.at, v.outcome, v.reason, v.external_id, v.username, v.client_addr, v.request_id \
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::bigint[]) \
     AS v(at, outcome, reason, external_id, username, client_addr, request_id, expect) \
     WHERE v.expect IS NULL OR v.expect = (SELECT value FROM g)) \
     SELECT value FROM g";

/// Why an append failed: the database's message (the backend redacts it), or the writer gone.
pub(crate) enum AuditFailure {
    Database(String),
    Stopped,
}

/// The handle of PostgreSQL's audit writer task; clones share the task.
#[derive(Debug, Clone)]
pub(crate) struct AuditWriter {
    jobs: mpsc::Sender<AuditJob>,
}

impl AuditWriter {
    /// Starts the writer task on the current Tokio runtime; it ends when every handle is gone
    /// or the pool closes (giving its connection back, which `Pool::close` waits for).
    pub(crate) fn start(pool: sqlx::PgPool) -> AuditWriter {
        let (jobs, mut queue) = mpsc::channel::<AuditJob>(4 * AUDIT_BATCH);
        let mut closed = pool.close_event();
        tokio::spawn(async move {
            // The writer keeps one connection: one backend with its statements prepared and no
            // pool checkout per batch. (On SQLite, where this writer ran before, connections
            // taking turns each found their page cache invalidated by the other's write.)
            let mut conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>> = None;
            loop {
                let first = tokio::select! {
                    job = queue.recv() => match job {
                        Some(job) => job,
                        None => break,
                    },
                    _ = &mut closed => break,
                };
                // Let the logins that are running reach their audit write before the batch is
                // taken: a few yields (microseconds, no timer) put more records in each commit.
                // Measured once logins stopped reading the generation before their lookup:
                // PostgreSQL's CPU per ES256 login 60-63 -> 50-53 µs (bench/NOTES.md). Session 7
                // found no gain from two yields while the generation reads dominated.
                for _ in 0..LINGER_YIELDS {
                    tokio::task::yield_now().await;
                }
                let mut batch = vec![first];
                while batch.len() < AUDIT_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let mut records = Vec::with_capacity(batch.len());
                let mut replies = Vec::with_capacity(batch.len());
                for (record, expect, reply) in batch {
                    records.push((record, expect));
                    replies.push((expect, reply));
                }
                let done = match conn.as_mut() {
                    Some(held) => Self::insert(held, records).await,
                    None => match pool.acquire().await {
                        Ok(fresh) => Self::insert(conn.insert(fresh), records).await,
                        Err(e) => Err(e),
                    },
                };
                if done.is_err() {
                    // A broken connection is not kept: the next batch takes another.
                    conn = None;
                }
                let done = done.map_err(|e| chain(&e));
                for (expect, reply) in replies {
                    // A record with an expectation was written exactly when the generation
                    // the statement saw is the expected one (the same value its `WHERE` used).
                    let written = done
                        .clone()
                        .map(|generation| expect.is_none() || expect == generation);
                    let _ = reply.send(written);
                }
            }
        });
        AuditWriter { jobs }
    }

    /// One `INSERT` of `records`, their columns bound as arrays and unnested: the same two
    /// statement texts whatever the batch's size, so each is prepared once per connection
    /// (a `VALUES` list with a parameter per cell was a new text, built cell by cell, for every
    /// size). When a record carries an expected generation, the statement reads
    /// `lakests_generation` too, writes such a record only if the value is the expected one,
    /// and returns the value it saw (one statement: one snapshot, one commit).
    async fn insert(
        conn: &mut sqlx::PgConnection,
        records: Vec<(LoginAudit, Option<u64>)>,
    ) -> Result<Option<u64>, sqlx::Error> {
        let checked = records.iter().any(|(_, expect)| expect.is_some());
        let n = records.len();
        let mut at = Vec::with_capacity(n);
        let mut outcome = Vec::with_capacity(n);
        let mut reason = Vec::with_capacity(n);
        let mut external_id = Vec::with_capacity(n);
        let mut username = Vec::with_capacity(n);
        let mut client_addr = Vec::with_capacity(n);
        let mut request_id = Vec::with_capacity(n);
        let mut expected = Vec::with_capacity(n);
        for (record, expect) in records {
            at.push(record.at);
            outcome.push(record.outcome.as_str());
            reason.push(record.reason);
            external_id.push(record.external_id);
            username.push(record.username);
            client_addr.push(record.client_addr);
            request_id.push(record.request_id);
            expected.push(expect.map(u64::cast_signed));
        }
        let query = sqlx::query(if checked { INSERT_CHECKED } else { INSERT })
            .bind(at)
            .bind(outcome)
            .bind(reason)
            .bind(external_id)
            .bind(username)
            .bind(client_addr)
            .bind(request_id);
        if checked {
            let row = query.bind(expected).fetch_one(&mut *conn).await?;
            let value: i64 = sqlx::Row::try_get(&row, 0)?;
            Ok(Some(value.cast_unsigned()))
        } else {
            query.execute(&mut *conn).await?;
            Ok(None)
        }
    }

    /// Appends `record`, returning once it is committed.
    pub(crate) async fn append(&self, record: &LoginAudit) -> Result<(), AuditFailure> {
        self.submit(record, None).await.map(|_| ())
    }

    /// The audit write checks the generation (see [`Self::append_if_unchanged`]).
    pub(crate) fn checks_generation(&self) -> bool {
        true
    }

    /// Appends `record` only if `lakests_generation` still holds `generation` when the
    /// statement runs; `false`, and nothing written, when it moved.
    pub(crate) async fn append_if_unchanged(
        &self,
        record: &LoginAudit,
        generation: u64,
    ) -> Result<bool, AuditFailure> {
        self.submit(record, Some(generation)).await
    }

    async fn submit(&self, record: &LoginAudit, expect: Option<u64>) -> Result<bool, AuditFailure> {
        let (reply, committed) = oneshot::channel();
        self.jobs
            .send((record.clone(), expect, reply))
            .await
            .map_err(|_| AuditFailure::Stopped)?;
        match committed.await {
            Ok(Ok(written)) => Ok(written),
            Ok(Err(message)) => Err(AuditFailure::Database(message)),
            Err(_) => Err(AuditFailure::Stopped),
        }
    }
}
