//! The PostgreSQL backend (`postgres://...`), a team's shared state: many CI runners at once.
//!
//! One writer per environment: a session advisory lock held on a dedicated connection for the
//! whole operation (it goes away with the connection when a holder dies), plus a `locks` row
//! naming the holder for `lock status`. Writes run in transactions that lock the environment
//! row, so audit events from concurrent readers (plans, drift) chain in order.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::Mutex;

use super::queries;
use super::rows::{Held, LockColumns, ResourceRow, corrupt, lock_from, to_json};
use super::{
    Change, LockInfo, ResourceState, Result, StateError, StateStore, StoredOutput, StoredRollout,
};
use crate::audit::{self, Event, NewEvent};
use crate::model::Address;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The advisory lock key of an environment, as SQL: `$1` is the environment name.
macro_rules! lock_key {
    () => {
        "hashtextextended('converge:' || $1, 0)"
    };
}

/// Matches the `pg_locks` row of the environment's advisory lock (`$1`), held by any session.
macro_rules! held_advisory_lock {
    () => {
        concat!(
            "FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = ",
            lock_key!()
        )
    };
}

/// Serializes migrations of a fresh database between processes started at once.
const MIGRATION_LOCK_KEY: i64 = 0x636f_6e76_6572_6765; // "converge"

/// State of one environment in a PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
    options: PgConnectOptions,
    env: String,
    location: String,
    held: Held,
    lock_conn: Mutex<Option<PgConnection>>,
}

impl PostgresStore {
    /// Connects, runs the embedded migrations, and registers the environment.
    pub async fn open(url: &str, env: &str) -> Result<PostgresStore> {
        let location = without_credentials(url);
        let db_err = |source| StateError::Database {
            location: location.clone(),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(db_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(db_err)?;
        let mut conn = pool.acquire().await.map_err(db_err)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        let migrated = MIGRATOR.run(&mut *conn).await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        migrated.map_err(|e| db_err(e.into()))?;
        sqlx::query(queries::numbered(queries::ENSURE_ENV))
            .bind(env)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        drop(conn);
        Ok(PostgresStore {
            pool,
            options,
            env: env.to_string(),
            location,
            held: Held::default(),
            lock_conn: Mutex::new(None),
        })
    }

    fn err(&self, source: sqlx::Error) -> StateError {
        StateError::Database {
            location: self.location.clone(),
            source,
        }
    }

    async fn lock_row(&self) -> Result<Option<LockInfo>> {
        let row: Option<LockColumns> = sqlx::query_as(queries::numbered(queries::LOCK_ROW))
            .bind(&self.env)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(lock_from))
    }

    /// Whether some session holds the environment's advisory lock.
    async fn advisory_lock_held(&self) -> Result<bool> {
        sqlx::query_scalar(concat!(
            "SELECT EXISTS (SELECT 1 ",
            held_advisory_lock!(),
            ")"
        ))
        .bind(&self.env)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }
}

/// The URL with any user and password taken out, for messages.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "postgres://(unparsable URL)".into(),
    }
}

#[async_trait]
impl StateStore for PostgresStore {
    fn environment(&self) -> &str {
        &self.env
    }

    async fn serial(&self) -> Result<i64> {
        sqlx::query_scalar(queries::numbered(queries::SERIAL))
            .bind(&self.env)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))
    }

    async fn resources(&self) -> Result<Vec<ResourceState>> {
        let rows = sqlx::query(queries::numbered(queries::RESOURCES))
            .bind(&self.env)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|row| {
                ResourceRow {
                    address: row.get(0),
                    kind: row.get(1),
                    remote_id: row.get(2),
                    properties: row.get(3),
                    outputs: row.get(4),
                    dependencies: row.get(5),
                    status: row.get(6),
                    // Written, not read back: the digests themselves say their form.
                    digest_form: String::new(),
                }
                .decode()
            })
            .collect()
    }

    async fn commit(&self, change: Change, event: NewEvent, ctx: &audit::Context) -> Result<Event> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let (seq, head): (i64, String) =
            sqlx::query_as(queries::numbered_for_update(queries::AUDIT_HEAD))
                .bind(&self.env)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        if self.held.get().is_some() {
            let current: Option<String> = sqlx::query_scalar("SELECT id FROM locks WHERE env = $1")
                .bind(&self.env)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            self.held.check(&self.env, current.as_deref())?;
        }
        let bump = !matches!(change, Change::None);
        match &change {
            Change::Put(r) => {
                let row = ResourceRow::encode(r);
                sqlx::query(queries::numbered(queries::UPSERT_RESOURCE))
                    .bind(&self.env)
                    .bind(&row.address)
                    .bind(&row.kind)
                    .bind(&row.remote_id)
                    .bind(&row.properties)
                    .bind(&row.outputs)
                    .bind(&row.dependencies)
                    .bind(&row.status)
                    .bind(&row.digest_form)
                    .bind(chrono::Utc::now().to_rfc3339())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
            Change::Remove(address) => {
                sqlx::query(queries::numbered(queries::DELETE_RESOURCE))
                    .bind(&self.env)
                    .bind(address.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
            Change::Move(moves) => {
                for (from, to) in moves {
                    sqlx::query(queries::numbered(queries::MOVE_RESOURCE))
                        .bind(to.as_str())
                        .bind(chrono::Utc::now().to_rfc3339())
                        .bind(&self.env)
                        .bind(from.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                    sqlx::query(queries::numbered(queries::MOVE_ROLLOUT))
                        .bind(to.as_str())
                        .bind(&self.env)
                        .bind(from.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                    sqlx::query(queries::numbered(queries::MOVE_DEPENDENCIES))
                        .bind(format!("\"{from}\""))
                        .bind(format!("\"{to}\""))
                        .bind(&self.env)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                }
            }
            Change::Outputs(outputs) => {
                sqlx::query(queries::numbered(queries::DELETE_OUTPUTS))
                    .bind(&self.env)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                for o in outputs {
                    sqlx::query(queries::numbered(queries::INSERT_OUTPUT))
                        .bind(&self.env)
                        .bind(&o.name)
                        .bind(super::rows::encode_output(o))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                }
            }
            Change::None => {}
        }
        let event = Event::seal(ctx, &self.env, seq, &head, event);
        sqlx::query(queries::numbered(queries::INSERT_EVENT))
            .bind(&self.env)
            .bind(event.seq)
            .bind(to_json(&event))
            .bind(&event.hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query(queries::numbered(queries::ADVANCE))
            .bind(event.seq)
            .bind(&event.hash)
            .bind(i64::from(bump))
            .bind(&self.env)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(event)
    }

    async fn mark_in_flight(&self, resource: &ResourceState) -> Result<()> {
        let row = ResourceRow::encode(resource);
        sqlx::query(queries::numbered(queries::MARK_IN_FLIGHT))
            .bind(&self.env)
            .bind(&row.address)
            .bind(&row.kind)
            .bind(&row.remote_id)
            .bind(&row.properties)
            .bind(&row.outputs)
            .bind(&row.dependencies)
            .bind(&row.status)
            .bind(&row.digest_form)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn try_lock(&self, info: &LockInfo) -> Result<Option<LockInfo>> {
        let mut conn = PgConnection::connect_with(&self.options)
            .await
            .map_err(|e| self.err(e))?;
        let got: bool =
            sqlx::query_scalar(concat!("SELECT pg_try_advisory_lock(", lock_key!(), ")"))
                .bind(&self.env)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| self.err(e))?;
        if !got {
            let _ = conn.close().await;
            // The holder writes its row right after it takes the lock: give it a moment.
            let mut row = self.lock_row().await?;
            if row.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                row = self.lock_row().await?;
            }
            let lock = row.unwrap_or_else(|| LockInfo {
                id: String::new(),
                holder: "another converge process".into(),
                host: "an unknown host".into(),
                pid: 0,
                operation: "an operation".into(),
                since: "just now".into(),
                lease_until: String::new(),
            });
            return Err(StateError::Locked {
                env: self.env.clone(),
                lock: Box::new(lock),
            });
        }
        // We hold the advisory lock, so any row left is from a holder whose session is gone.
        let previous = self.lock_row().await?;
        sqlx::query(
            "INSERT INTO locks (env, id, holder, host, pid, operation, since, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (env) DO UPDATE SET id = excluded.id, holder = excluded.holder, host = excluded.host,
               pid = excluded.pid, operation = excluded.operation, since = excluded.since, lease_until = excluded.lease_until",
        )
        .bind(&self.env)
        .bind(&info.id)
        .bind(&info.holder)
        .bind(&info.host)
        .bind(i64::from(info.pid))
        .bind(&info.operation)
        .bind(&info.since)
        .bind(&info.lease_until)
        .execute(&mut conn)
        .await
        .map_err(|e| self.err(e))?;
        *self.lock_conn.lock().await = Some(conn);
        self.held.set(&info.id, &info.operation);
        Ok(previous)
    }

    async fn stale_reason(&self, lock: &LockInfo) -> Option<String> {
        match self.advisory_lock_held().await {
            Ok(false) => Some(format!(
                "no database session holds the lock any more: {} on {} exited or was killed",
                lock.operation, lock.host
            )),
            _ => None,
        }
    }

    async fn renew_lock(&self, id: &str, lease_until: &str) -> Result<()> {
        sqlx::query(queries::numbered(queries::RENEW_LOCK))
            .bind(lease_until)
            .bind(&self.env)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn unlock(&self, id: &str) -> Result<()> {
        sqlx::query(queries::numbered(queries::UNLOCK))
            .bind(&self.env)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        self.held.clear();
        if let Some(mut conn) = self.lock_conn.lock().await.take() {
            sqlx::query(concat!("SELECT pg_advisory_unlock(", lock_key!(), ")"))
                .bind(&self.env)
                .execute(&mut conn)
                .await
                .map_err(|e| self.err(e))?;
            let _ = conn.close().await;
        }
        Ok(())
    }

    async fn lock_status(&self) -> Result<Option<LockInfo>> {
        self.lock_row().await
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>> {
        let current = self.lock_row().await?;
        sqlx::query(queries::numbered(queries::BREAK_LOCK))
            .bind(&self.env)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        // A hung holder's session still has the advisory lock: end that session. Its own
        // writes then stop too, as the lock row no longer names it.
        sqlx::query(concat!(
            "SELECT pg_terminate_backend(pid) ",
            held_advisory_lock!()
        ))
        .bind(&self.env)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(current)
    }

    async fn audit_chain(&self) -> Result<(Vec<Event>, i64, String)> {
        let rows = sqlx::query("SELECT seq, body FROM audit_events WHERE env = $1 ORDER BY id")
            .bind(&self.env)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.get(0);
            let body: &str = row.get(1);
            let event: Event = serde_json::from_str(body)
                .map_err(|e| corrupt(&format!("audit event {seq}"), e))?;
            events.push(event);
        }
        let (seq, head): (i64, String) = sqlx::query_as(queries::numbered(queries::AUDIT_HEAD))
            .bind(&self.env)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok((events, seq, head))
    }

    async fn save_rollout(&self, address: &Address, body: &serde_json::Value) -> Result<()> {
        sqlx::query(queries::numbered(queries::SAVE_ROLLOUT))
            .bind(&self.env)
            .bind(address.as_str())
            .bind(body.to_string())
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn outputs(&self) -> Result<Vec<StoredOutput>> {
        let rows: Vec<(String, String)> = sqlx::query_as(queries::numbered(queries::OUTPUTS))
            .bind(&self.env)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|(name, body)| super::rows::decode_output(name, body))
            .collect()
    }

    async fn rollouts(&self) -> Result<Vec<StoredRollout>> {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as(queries::numbered(queries::ROLLOUTS))
                .bind(&self.env)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(address, body, request)| {
                Ok(StoredRollout {
                    address: Address::parse(&address)
                        .ok_or_else(|| corrupt(&address, "bad address"))?,
                    body: serde_json::from_str(&body).map_err(|e| corrupt(&address, e))?,
                    request,
                })
            })
            .collect()
    }

    async fn request_rollout(&self, address: &Address, request: &str) -> Result<bool> {
        let done = sqlx::query(queries::numbered(queries::REQUEST_ROLLOUT))
            .bind(request)
            .bind(&self.env)
            .bind(address.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn take_rollout_request(&self, address: &Address) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let request: Option<Option<String>> =
            sqlx::query_scalar(queries::numbered_for_update(queries::ROLLOUT_REQUEST))
                .bind(&self.env)
                .bind(address.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let request = request.flatten();
        if request.is_some() {
            sqlx::query(queries::numbered(queries::CLEAR_REQUEST))
                .bind(&self.env)
                .bind(address.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn messages_never_show_the_password() {
        let shown = without_credentials("postgres://ci:s3cret@db.internal:5432/converge");
        assert_eq!(shown, "postgres://db.internal:5432/converge");
        assert!(!shown.contains("s3cret"));
    }
}
