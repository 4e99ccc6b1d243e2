//! Group commit for PostgreSQL's login audit records: every login waits for its record's
//! commit (a record is never acknowledged before it is written), but records that arrive while
//! a commit is in progress share the next one: one multi-row `INSERT` (one transaction, one WAL
//! flush) for all of them instead of one each, by one writer task on one connection. SQLite's
//! records are written by the logins themselves (`crate::sqlite_audit`): there a writer task
//! only added thread hops (bench/NOTES.md, issue 14 targets 2 and 3).

use lakests_core::store::LoginAudit;
use tokio::sync::{mpsc, oneshot};

use crate::redact::chain;

/// A record waiting for its commit, with the caller to tell.
type AuditJob = (LoginAudit, oneshot::Sender<Result<(), String>>);

/// Most records one `INSERT` carries ([`COLUMNS`] parameters each: far below PostgreSQL's
/// limit of 65535).
const AUDIT_BATCH: usize = 64;

/// The columns of a record in the `INSERT`.
const COLUMNS: usize = 7;

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
                let mut batch = vec![first];
                while batch.len() < AUDIT_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let (records, replies): (Vec<LoginAudit>, Vec<_>) = batch.into_iter().unzip();
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
                for reply in replies {
                    let _ = reply.send(done.clone());
                }
            }
        });
        AuditWriter { jobs }
    }

    /// One multi-row `INSERT` of `records`.
    async fn insert(
        conn: &mut sqlx::PgConnection,
        records: Vec<LoginAudit>,
    ) -> Result<(), sqlx::Error> {
        let rows: Vec<String> = (0..records.len())
            .map(|i| {
                let n = i * COLUMNS;
                let cells: Vec<String> = (1..=COLUMNS).map(|c| format!("${}", n + c)).collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO login_audit (at, outcome, reason, external_id, username, client_addr, request_id) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for record in records {
            query = query
                .bind(record.at)
                .bind(record.outcome.as_str().to_owned())
                .bind(record.reason)
                .bind(record.external_id)
                .bind(record.username)
                .bind(record.client_addr)
                .bind(record.request_id);
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }

    /// Appends `record`, returning once it is committed.
    pub(crate) async fn append(&self, record: &LoginAudit) -> Result<(), AuditFailure> {
        let (reply, committed) = oneshot::channel();
        self.jobs
            .send((record.clone(), reply))
            .await
            .map_err(|_| AuditFailure::Stopped)?;
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(AuditFailure::Database(message)),
            Err(_) => Err(AuditFailure::Stopped),
        }
    }
}
