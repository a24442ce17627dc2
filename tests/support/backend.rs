//! State backends for tests: the default SQLite file, or a scratch PostgreSQL database on the
//! server at 127.0.0.1:5432 (created per test, dropped afterwards).

use std::path::Path;

/// The server the PostgreSQL tests use: `CONVERGE_TEST_POSTGRES_URL`, else the local one.
fn server_url() -> String {
    std::env::var("CONVERGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// Where a test keeps converge's state.
pub enum Backend {
    /// `state/<env>.db` under the project (converge's default).
    Sqlite,
    /// A database of its own on the PostgreSQL server.
    Postgres(PgDatabase),
}

impl Backend {
    /// A scratch PostgreSQL database; panics with set-up advice when the server is not there.
    pub fn postgres() -> Backend {
        Backend::Postgres(PgDatabase::create())
    }

    /// The `--state-url` for converge, `None` for the default.
    pub fn state_url(&self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(db) => Some(db.url.clone()),
        }
    }

    /// Runs one SQL statement with positional text arguments against an environment's state
    /// (SQLite placeholders `?`, translated to `$n` for PostgreSQL). Returns rows affected.
    pub async fn execute(&self, root: &Path, env: &str, sql: &str, args: &[&str]) -> u64 {
        match self {
            Backend::Sqlite => {
                let url = sqlite_url(root, env);
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
                for a in args {
                    q = q.bind(a.to_string());
                }
                let n = q.execute(&pool).await.unwrap().rows_affected();
                pool.close().await;
                n
            }
            Backend::Postgres(db) => {
                let numbered = pg_placeholders(sql);
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                let mut q = sqlx::query(sqlx::AssertSqlSafe(numbered));
                for a in args {
                    q = q.bind(a.to_string());
                }
                let n = q.execute(&pool).await.unwrap().rows_affected();
                pool.close().await;
                n
            }
        }
    }

    /// One text value from a query (same placeholder rules as [`Backend::execute`]).
    pub async fn fetch_text(&self, root: &Path, env: &str, sql: &str, args: &[&str]) -> String {
        match self {
            Backend::Sqlite => {
                let url = sqlite_url(root, env);
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()));
                for a in args {
                    q = q.bind(a.to_string());
                }
                let v: String = q.fetch_one(&pool).await.unwrap();
                pool.close().await;
                v
            }
            Backend::Postgres(db) => {
                let numbered = pg_placeholders(sql);
                let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(numbered));
                for a in args {
                    q = q.bind(a.to_string());
                }
                let v: String = q.fetch_one(&pool).await.unwrap();
                pool.close().await;
                v
            }
        }
    }
}

fn sqlite_url(root: &Path, env: &str) -> String {
    format!(
        "sqlite://{}",
        root.join("state").join(format!("{env}.db")).display()
    )
}

/// `?` placeholders as PostgreSQL's `$1, $2...`.
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

/// A database created for one test and dropped (sessions and all) when the test ends.
pub struct PgDatabase {
    /// `postgres://.../NAME`.
    pub url: String,
    name: String,
}

impl PgDatabase {
    fn create() -> PgDatabase {
        let server = server_url();
        let name = format!("converge_test_{}", uuid::Uuid::new_v4().simple());
        let create = format!("CREATE DATABASE {name}");
        run_blocking(async {
            let mut conn = connect_admin(&server).await;
            sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(create))
                .await
                .expect("create the test database");
        });
        PgDatabase {
            url: format!("{server}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let server = server_url();
        let drop_sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        run_blocking(async {
            let mut conn = connect_admin(&server).await;
            let _ = sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(drop_sql)).await;
        });
    }
}

async fn connect_admin(server: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(&format!("{server}/postgres")).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {server} ({e}). The PostgreSQL state tests need it \
             (trust auth, user postgres): start the server, or set CONVERGE_TEST_POSTGRES_URL. \
             These tests fail rather than skip."
        ),
    }
}

/// Runs a future to completion on a runtime of its own (usable from Drop and sync code, also
/// inside a test's own runtime).
fn run_blocking<F: std::future::Future<Output = ()> + Send>(f: F) {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .join()
        .unwrap()
    });
}
