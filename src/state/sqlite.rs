//! The embedded SQLite backend (`state/<env>.db`): WAL mode, immediate transactions for writes.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use super::{Change, LockInfo, ResourceState, ResourceStatus, Result, StateError, StateStore};
use crate::audit::{self, Event, NewEvent};
use crate::model::{Address, Value};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// State of one environment in a SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
    env: String,
    location: String,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &Path, env: &str) -> Result<SqliteStore> {
        let location = path.display().to_string();
        let db_err = |source| StateError::Database {
            location: location.clone(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| db_err(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(db_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        MIGRATOR.run(&pool).await.map_err(|e| db_err(e.into()))?;
        sqlx::query("INSERT OR IGNORE INTO environments (env) VALUES (?)")
            .bind(env)
            .execute(&pool)
            .await
            .map_err(db_err)?;
        Ok(SqliteStore {
            pool,
            env: env.to_string(),
            location,
        })
    }

    fn err(&self, source: sqlx::Error) -> StateError {
        StateError::Database {
            location: self.location.clone(),
            source,
        }
    }

    /// A raw pool, for tests that tamper with the audit trail.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        what: what.to_string(),
        message: e.to_string(),
    }
}

#[async_trait]
impl StateStore for SqliteStore {
    fn environment(&self) -> &str {
        &self.env
    }

    async fn serial(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT serial FROM environments WHERE env = ?")
            .bind(&self.env)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))
    }

    async fn resources(&self) -> Result<Vec<ResourceState>> {
        let rows = sqlx::query(
            "SELECT address, kind, remote_id, properties, outputs, dependencies FROM resources WHERE env = ? ORDER BY address",
        )
        .bind(&self.env)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|row| {
                let address: String = row.get(0);
                let parse = |i: usize| -> Result<serde_json::Value> {
                    serde_json::from_str(row.get::<&str, _>(i)).map_err(|e| corrupt(&address, e))
                };
                Ok(ResourceState {
                    address: Address::parse(&address)
                        .ok_or_else(|| corrupt(&address, "bad address"))?,
                    kind: row.get(1),
                    remote_id: row.get(2),
                    properties: Value::from_json(&parse(3)?),
                    outputs: Value::from_json(&parse(4)?),
                    dependencies: serde_json::from_value(parse(5)?)
                        .map_err(|e| corrupt(&address, e))?,
                    status: ResourceStatus::Applied,
                })
            })
            .collect()
    }

    async fn commit(&self, change: Change, event: NewEvent, ctx: &audit::Context) -> Result<Event> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        let (seq, head): (i64, String) =
            sqlx::query_as("SELECT audit_seq, audit_head FROM environments WHERE env = ?")
                .bind(&self.env)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let bump = !matches!(change, Change::None);
        match &change {
            Change::Put(r) => {
                sqlx::query(
                    "INSERT INTO resources (env, address, kind, remote_id, properties, outputs, dependencies, status, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, 'applied', ?)
                     ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, remote_id = excluded.remote_id,
                       properties = excluded.properties, outputs = excluded.outputs,
                       dependencies = excluded.dependencies, status = excluded.status, updated_at = excluded.updated_at",
                )
                .bind(&self.env)
                .bind(r.address.as_str())
                .bind(&r.kind)
                .bind(&r.remote_id)
                .bind(to_json(&r.properties.redacted()))
                .bind(to_json(&r.outputs.redacted()))
                .bind(to_json(&r.dependencies))
                .bind(chrono::Utc::now().to_rfc3339())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            Change::Remove(address) => {
                sqlx::query("DELETE FROM resources WHERE env = ? AND address = ?")
                    .bind(&self.env)
                    .bind(address.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
            Change::None => {}
        }
        let event = Event::seal(ctx, &self.env, seq, &head, event);
        sqlx::query("INSERT INTO audit_events (env, seq, body, hash) VALUES (?, ?, ?, ?)")
            .bind(&self.env)
            .bind(event.seq)
            .bind(to_json(&event))
            .bind(&event.hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query(
            "UPDATE environments SET audit_seq = ?, audit_head = ?, serial = serial + ? WHERE env = ?",
        )
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

    async fn try_lock(&self, info: &LockInfo) -> Result<Option<LockInfo>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        let current = lock_row(&mut tx, &self.env)
            .await
            .map_err(|e| self.err(e))?;
        let taken_over = match current {
            Some(lock) if lock.stale_reason().is_none() => {
                return Err(StateError::Locked {
                    env: self.env.clone(),
                    lock: Box::new(lock),
                });
            }
            other => other,
        };
        sqlx::query(
            "INSERT OR REPLACE INTO locks (env, id, holder, host, pid, operation, since, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&self.env)
        .bind(&info.id)
        .bind(&info.holder)
        .bind(&info.host)
        .bind(info.pid)
        .bind(&info.operation)
        .bind(&info.since)
        .bind(&info.lease_until)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(taken_over)
    }

    async fn renew_lock(&self, id: &str, lease_until: &str) -> Result<()> {
        sqlx::query("UPDATE locks SET lease_until = ? WHERE env = ? AND id = ?")
            .bind(lease_until)
            .bind(&self.env)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn unlock(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM locks WHERE env = ? AND id = ?")
            .bind(&self.env)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn lock_status(&self) -> Result<Option<LockInfo>> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
        lock_row(&mut conn, &self.env)
            .await
            .map_err(|e| self.err(e))
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        let current = lock_row(&mut tx, &self.env)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM locks WHERE env = ?")
            .bind(&self.env)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(current)
    }

    async fn audit_chain(&self) -> Result<(Vec<Event>, i64, String)> {
        let rows = sqlx::query("SELECT seq, body FROM audit_events WHERE env = ? ORDER BY rowid")
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
        let (seq, head): (i64, String) =
            sqlx::query_as("SELECT audit_seq, audit_head FROM environments WHERE env = ?")
                .bind(&self.env)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok((events, seq, head))
    }
}

async fn lock_row(conn: &mut sqlx::SqliteConnection, env: &str) -> sqlx::Result<Option<LockInfo>> {
    let row = sqlx::query(
        "SELECT id, holder, host, pid, operation, since, lease_until FROM locks WHERE env = ?",
    )
    .bind(env)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| LockInfo {
        id: r.get(0),
        holder: r.get(1),
        host: r.get(2),
        pid: r.get::<i64, _>(3) as u32,
        operation: r.get(4),
        since: r.get(5),
        lease_until: r.get(6),
    }))
}
