//! The embedded SQLite backend (`state/<env>.db`): WAL mode, immediate transactions for writes,
//! a lock row with a lease (a holder that dies leaves a row that is stale once its pid is gone
//! on this host or its lease ran out).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::queries;
use super::rows::{Held, LockColumns, ResourceRow, corrupt, lock_from, to_json};
use super::{
    Change, LockInfo, ResourceState, Result, StateError, StateStore, StoredOutput, StoredRollout,
};
use crate::audit::{self, Event, NewEvent};
use crate::model::Address;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// State of one environment in a SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
    env: String,
    location: String,
    held: Held,
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
        // One process migrates at a time: several started at once on a fresh file would
        // otherwise race to create the same tables.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        MIGRATOR.run(&mut *tx).await.map_err(|e| db_err(e.into()))?;
        tx.commit().await.map_err(db_err)?;
        sqlx::query(queries::ENSURE_ENV)
            .bind(env)
            .execute(&pool)
            .await
            .map_err(db_err)?;
        Ok(SqliteStore {
            pool,
            env: env.to_string(),
            location,
            held: Held::default(),
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

#[async_trait]
impl StateStore for SqliteStore {
    fn environment(&self) -> &str {
        &self.env
    }

    async fn serial(&self) -> Result<i64> {
        sqlx::query_scalar(queries::SERIAL)
            .bind(&self.env)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))
    }

    async fn resources(&self) -> Result<Vec<ResourceState>> {
        let rows = sqlx::query(queries::RESOURCES)
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        if self.held.get().is_some() {
            let current = lock_row(&mut tx, &self.env)
                .await
                .map_err(|e| self.err(e))?;
            self.held
                .check(&self.env, current.as_ref().map(|l| l.id.as_str()))?;
        }
        let (seq, head): (i64, String) = sqlx::query_as(queries::AUDIT_HEAD)
            .bind(&self.env)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let bump = !matches!(change, Change::None);
        match &change {
            Change::Put(r) => {
                let row = ResourceRow::encode(r);
                sqlx::query(queries::UPSERT_RESOURCE)
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
                sqlx::query(queries::DELETE_RESOURCE)
                    .bind(&self.env)
                    .bind(address.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
            Change::Move(moves) => {
                for (from, to) in moves {
                    sqlx::query(queries::MOVE_RESOURCE)
                        .bind(to.as_str())
                        .bind(chrono::Utc::now().to_rfc3339())
                        .bind(&self.env)
                        .bind(from.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                    sqlx::query(queries::MOVE_ROLLOUT)
                        .bind(to.as_str())
                        .bind(&self.env)
                        .bind(from.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                    sqlx::query(queries::MOVE_DEPENDENCIES)
                        .bind(format!("\"{from}\""))
                        .bind(format!("\"{to}\""))
                        .bind(&self.env)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                }
            }
            Change::Outputs(outputs) => {
                sqlx::query(queries::DELETE_OUTPUTS)
                    .bind(&self.env)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
                for o in outputs {
                    sqlx::query(queries::INSERT_OUTPUT)
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
        sqlx::query(queries::INSERT_EVENT)
            .bind(&self.env)
            .bind(event.seq)
            .bind(to_json(&event))
            .bind(&event.hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query(queries::ADVANCE)
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
        sqlx::query(queries::MARK_IN_FLIGHT)
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
        self.held.set(&info.id, &info.operation);
        Ok(taken_over)
    }

    async fn renew_lock(&self, id: &str, lease_until: &str) -> Result<()> {
        sqlx::query(queries::RENEW_LOCK)
            .bind(lease_until)
            .bind(&self.env)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn unlock(&self, id: &str) -> Result<()> {
        sqlx::query(queries::UNLOCK)
            .bind(&self.env)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        self.held.clear();
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
        sqlx::query(queries::BREAK_LOCK)
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
        let (seq, head): (i64, String) = sqlx::query_as(queries::AUDIT_HEAD)
            .bind(&self.env)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok((events, seq, head))
    }

    async fn save_rollout(&self, address: &Address, body: &serde_json::Value) -> Result<()> {
        sqlx::query(queries::SAVE_ROLLOUT)
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
        let rows: Vec<(String, String)> = sqlx::query_as(queries::OUTPUTS)
            .bind(&self.env)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|(name, body)| super::rows::decode_output(name, body))
            .collect()
    }

    async fn rollouts(&self) -> Result<Vec<StoredRollout>> {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(queries::ROLLOUTS)
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
        let done = sqlx::query(queries::REQUEST_ROLLOUT)
            .bind(request)
            .bind(&self.env)
            .bind(address.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn take_rollout_request(&self, address: &Address) -> Result<Option<String>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        let request: Option<Option<String>> = sqlx::query_scalar(queries::ROLLOUT_REQUEST)
            .bind(&self.env)
            .bind(address.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let request = request.flatten();
        if request.is_some() {
            sqlx::query(queries::CLEAR_REQUEST)
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

async fn lock_row(conn: &mut SqliteConnection, env: &str) -> sqlx::Result<Option<LockInfo>> {
    let row: Option<LockColumns> = sqlx::query_as(queries::LOCK_ROW)
        .bind(env)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(lock_from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;
    use crate::state::ResourceStatus;

    fn ctx() -> audit::Context {
        audit::Context {
            actor: "tester".into(),
            commit: String::new(),
        }
    }

    fn row(address: &str, status: ResourceStatus) -> ResourceState {
        ResourceState {
            address: crate::model::Address::parse(address).unwrap(),
            kind: "aws.ecr_repository".into(),
            remote_id: address.into(),
            properties: Value::Null,
            outputs: Value::Null,
            dependencies: Vec::new(),
            status,
        }
    }

    #[tokio::test]
    async fn a_holder_whose_lock_was_broken_writes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.db");
        let holder = SqliteStore::open(&path, "dev").await.unwrap();
        let other = SqliteStore::open(&path, "dev").await.unwrap();
        let lock = LockInfo::for_this_process("alice", "apply", Duration::from_secs(60));
        holder.try_lock(&lock).await.unwrap();
        let second = LockInfo::for_this_process("bob", "apply", Duration::from_secs(60));
        assert!(matches!(
            other.try_lock(&second).await,
            Err(StateError::Locked { .. })
        ));
        holder
            .commit(
                Change::Put(row("a", ResourceStatus::Applied)),
                NewEvent::new("apply", crate::audit::EventKind::Create, "ok"),
                &ctx(),
            )
            .await
            .unwrap();
        let broken = other.force_unlock().await.unwrap().unwrap();
        assert_eq!(broken.holder, "alice");
        let refused = holder
            .commit(
                Change::Put(row("b", ResourceStatus::Applied)),
                NewEvent::new("apply", crate::audit::EventKind::Create, "ok"),
                &ctx(),
            )
            .await;
        assert!(matches!(refused, Err(StateError::LockLost { .. })));
        let stored: Vec<String> = other
            .resources()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.address.to_string())
            .collect();
        assert_eq!(stored, vec!["a"]);
    }

    #[tokio::test]
    async fn in_flight_markers_keep_last_applied_values_until_the_step_completes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("dev.db"), "dev")
            .await
            .unwrap();
        let mut applied = row("a", ResourceStatus::Applied);
        applied.properties = Value::str("v1");
        store
            .commit(
                Change::Put(applied.clone()),
                NewEvent::new("apply", crate::audit::EventKind::Create, "ok"),
                &ctx(),
            )
            .await
            .unwrap();
        let serial = store.serial().await.unwrap();
        let mut marker = applied.clone();
        marker.status = ResourceStatus::Updating;
        marker.properties = Value::str("v2");
        store.mark_in_flight(&marker).await.unwrap();
        store
            .mark_in_flight(&row("b", ResourceStatus::Creating))
            .await
            .unwrap();
        let rows = store.resources().await.unwrap();
        assert_eq!(rows[0].status, ResourceStatus::Updating);
        assert_eq!(rows[0].properties, Value::str("v1"), "last applied kept");
        assert_eq!(rows[1].status, ResourceStatus::Creating);
        assert_eq!(
            store.serial().await.unwrap(),
            serial,
            "markers are not changes"
        );
    }

    /// Moves made together: rows, rollout records (ECS services' and host apps' alike) and the
    /// dependencies on them follow, in one transaction and one event.
    #[tokio::test]
    async fn moves_carry_rows_rollout_records_and_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("dev.db"), "dev")
            .await
            .unwrap();
        let mut web = row("web", ResourceStatus::Applied);
        web.dependencies = vec![crate::model::Address::root("api")];
        for r in [row("api", ResourceStatus::Applied), web] {
            store
                .commit(
                    Change::Put(r),
                    NewEvent::new("apply", crate::audit::EventKind::Create, "ok"),
                    &ctx(),
                )
                .await
                .unwrap();
        }
        let api = crate::model::Address::root("api");
        store
            .save_rollout(&api, &serde_json::json!({"phase": "complete"}))
            .await
            .unwrap();
        let to = crate::model::Address::in_module("backend", "api");
        store
            .commit(
                Change::Move(vec![
                    (api.clone(), to.clone()),
                    (
                        crate::model::Address::root("web"),
                        crate::model::Address::in_module("backend", "web"),
                    ),
                ]),
                NewEvent::new("apply", crate::audit::EventKind::Move, "ok"),
                &ctx(),
            )
            .await
            .unwrap();
        let rows = store.resources().await.unwrap();
        let addresses: Vec<String> = rows.iter().map(|r| r.address.to_string()).collect();
        assert_eq!(addresses, ["backend.api", "backend.web"]);
        assert_eq!(rows[1].dependencies, vec![to.clone()]);
        let rollouts = store.rollouts().await.unwrap();
        assert_eq!(rollouts.len(), 1);
        assert_eq!(rollouts[0].address, to);
        assert_eq!(rollouts[0].body["phase"], "complete");
    }
}
