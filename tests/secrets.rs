//! Secret digests that cannot be turned back into the secret: a sensitive variable's value and
//! its plain SHA-256 appear in no state row (both backends), plan file, output or audit event;
//! a changed secret is a change and an unchanged one is not; another runner's key is refused
//! with both key ids; rotation with the previous key works; state written before state keys
//! (plain SHA-256 digests) plans clean and is upgraded by the next apply.

mod support;

use sha2::{Digest, Sha256};
use support::{Backend, Moto, Project, Run};

const SECRET: &str = "hunter2-Zq";

/// The digest older releases stored: plain SHA-256 of the value's canonical JSON.
fn plain_sha256(value: &str) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_string(value).unwrap().as_bytes(),
    ))
}

/// The example's dev environment with a sensitive variable in the API's environment.
fn project(moto: &Moto, backend: &Backend) -> Project {
    let p = Project::example().with_moto(moto).with_backend(backend);
    p.edit(
        "environments/dev.yaml",
        "variables:\n",
        &format!("variables:\n  api_token: {{ default: \"{SECRET}\", sensitive: true }}\n"),
    );
    p.edit(
        "environments/dev.yaml",
        "environment: { LOG_LEVEL: info, PORT: 8000 }",
        "environment: { LOG_LEVEL: info, PORT: 8000, TOKEN: \"${var.api_token}\" }",
    );
    p
}

fn dev(p: &Project, vars: &[String], extra: &[&str]) -> Run {
    let mut args: Vec<&str> = vec!["-e", "dev"];
    args.extend(vars.iter().map(String::as_str));
    args.extend(extra);
    p.converge(&args)
}

/// Everything the state backend holds for the environment, as text.
async fn stored_text(p: &Project, backend: &Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let mut all = String::new();
            for entry in std::fs::read_dir(p.root().join("state")).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
            all
        }
        Backend::Postgres(_) => {
            let mut all = String::new();
            for sql in [
                "SELECT COALESCE(string_agg(properties || outputs, ' '), '') FROM resources WHERE env = ?",
                "SELECT COALESCE(string_agg(body, ' '), '') FROM audit_events WHERE env = ?",
                "SELECT COALESCE(string_agg(body, ' '), '') FROM rollouts WHERE env = ?",
            ] {
                all.push_str(&backend.fetch_text(p.root(), "dev", sql, &["dev"]).await);
            }
            all
        }
    }
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} holds the secret");
    assert!(
        !text.contains(&plain_sha256(SECRET)),
        "{what} holds the secret's plain SHA-256"
    );
}

async fn nothing_guessable_anywhere(backend: Backend) {
    let moto = Moto::start();
    let vars = moto.network();
    let p = project(&moto, &backend);
    let plan_file = p.root().join("dev.plan.json");
    let planned = dev(&p, &vars, &["plan", "--out", plan_file.to_str().unwrap()]).expect(0);
    let applied = dev(&p, &vars, &["apply", "--auto-approve"]).expect(0);
    let log = dev(&p, &vars, &["audit", "log", "--format", "json"]).expect(0);
    let export = dev(&p, &vars, &["audit", "export", "--format", "jsonl"]).expect(0);
    let plan_json = dev(&p, &vars, &["plan", "--format", "json"]).expect(0);
    for (what, text) in [
        ("plan output", planned.stdout() + &planned.stderr()),
        ("apply output", applied.stdout() + &applied.stderr()),
        ("audit log", log.stdout()),
        ("audit export", export.stdout()),
        ("plan JSON", plan_json.stdout()),
        ("plan file", std::fs::read_to_string(&plan_file).unwrap()),
        ("state", stored_text(&p, &backend).await),
    ] {
        assert_clean(what, &text);
    }
    // The state holds a keyed digest of it, marked so.
    let state = stored_text(&p, &backend).await;
    assert!(state.contains("hmac-sha256:"), "keyed digests are stored");
    let form = backend
        .fetch_text(
            p.root(),
            "dev",
            "SELECT digest_form FROM resources WHERE env = ? AND address = ?",
            &["dev", "api.service"],
        )
        .await;
    assert_eq!(form, "hmac");
    // The key lives outside the project and the state.
    let keys: Vec<_> = std::fs::read_dir(p.config_dir().join("converge/state-keys"))
        .unwrap()
        .collect();
    assert_eq!(keys.len(), 1, "one key, for dev");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = keys[0]
            .as_ref()
            .unwrap()
            .metadata()
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        planned.stderr().contains("Created the state key of `dev`"),
        "said so the first time: {}",
        planned.stderr()
    );
    assert!(!applied.stderr().contains("Created the state key"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_guessable_reaches_sqlite_state_plan_files_output_or_audit() {
    nothing_guessable_anywhere(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_guessable_reaches_postgres_state_plan_files_output_or_audit() {
    nothing_guessable_anywhere(Backend::postgres()).await;
}

#[test]
fn a_changed_secret_is_a_change_another_key_is_refused_and_rotation_works() {
    let moto = Moto::start();
    let vars = moto.network();
    let p = project(&moto, &Backend::Sqlite);
    dev(&p, &vars, &["apply", "--auto-approve"]).expect(0);
    // Unchanged: no perpetual diff.
    dev(&p, &vars, &["plan", "--detailed-exitcode"]).expect(0);
    // Changed: a change, shown as such and never as a digest.
    let changed = dev(
        &p,
        &vars,
        &[
            "--var",
            "api_token=rotated-Q9",
            "plan",
            "--detailed-exitcode",
        ],
    )
    .expect(2);
    assert!(
        changed.stdout().contains("(sensitive, changed)"),
        "{}",
        changed.stdout()
    );
    assert!(!changed.stdout().contains("hmac-sha256") && !changed.stdout().contains("rotated-Q9"));

    // Another runner with another key: an error naming both key ids, not "every secret changed".
    let key_file = p.config_dir().join("converge/state-keys/dev.key");
    let ours = std::fs::read_to_string(&key_file).unwrap();
    let mut foreign = vec![
        "-e".to_string(),
        "dev".to_string(),
        "plan".to_string(),
        "--detailed-exitcode".to_string(),
    ];
    foreign.splice(2..2, vars.iter().cloned());
    let run = |env: Vec<(&str, &str)>| {
        let mut cmd = p.command(&foreign.iter().map(String::as_str).collect::<Vec<_>>());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from_output(cmd.output().unwrap(), &["plan"])
    };
    let refused = run(vec![("CONVERGE_STATE_KEY", "someone-elses-key")]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    let err = refused.stderr();
    assert!(
        err.contains("api.service: a secret digest in state was made with state key"),
        "{err}"
    );
    assert!(err.contains("CONVERGE_STATE_KEY_PREVIOUS"), "{err}");
    // Both key ids, as converge derives them from the keys.
    let key_id = |secret: &str| {
        let mut h = Sha256::new();
        h.update(b"converge state key id\0");
        h.update(secret.as_bytes());
        hex::encode(h.finalize())[..12].to_string()
    };
    assert!(
        err.contains(&format!("made with state key {}", key_id(ours.trim()))),
        "the writer's key id: {err}"
    );
    assert!(
        err.contains(&format!(
            "this run holds key {}",
            key_id("someone-elses-key")
        )),
        "this run's key id: {err}"
    );

    // Rotation: the new key current, the old one previous: no change, then apply rewrites.
    let rotating = vec![
        ("CONVERGE_STATE_KEY", "the-new-key-2026"),
        ("CONVERGE_STATE_KEY_PREVIOUS", ours.trim()),
    ];
    let clean = run(rotating.clone());
    assert_eq!(clean.code(), 0, "{}{}", clean.stdout(), clean.stderr());
    let mut apply = p.command(&{
        let mut a: Vec<&str> = vec!["-e", "dev"];
        a.extend(vars.iter().map(String::as_str));
        a.extend(["apply", "--auto-approve"]);
        a
    });
    for (k, v) in &rotating {
        apply.env(k, v);
    }
    let applied = Run::from_output(apply.output().unwrap(), &["apply"]).expect(0);
    assert!(
        applied.stderr().contains("secret digests upgraded"),
        "{}",
        applied.stderr()
    );
    let only_new = run(vec![("CONVERGE_STATE_KEY", "the-new-key-2026")]);
    assert_eq!(only_new.code(), 0, "{}", only_new.stderr());
}

/// State as the release before state keys wrote it: the digest is the plain SHA-256. It plans
/// with no changes, and the next apply rewrites it under the state key (a state-only step).
#[tokio::test(flavor = "multi_thread")]
async fn state_written_before_state_keys_plans_clean_then_is_upgraded() {
    let moto = Moto::start();
    let vars = moto.network();
    let backend = Backend::Sqlite;
    let p = project(&moto, &backend);
    dev(&p, &vars, &["apply", "--auto-approve"]).expect(0);
    let props = backend
        .fetch_text(
            p.root(),
            "dev",
            "SELECT properties FROM resources WHERE env = ? AND address = ?",
            &["dev", "api.service"],
        )
        .await;
    let keyed = props
        .split('"')
        .find(|s| s.starts_with("hmac-sha256:"))
        .expect("a keyed digest")
        .to_string();
    let legacy = props.replace(&keyed, &plain_sha256(SECRET));
    let n = backend
        .execute(
            p.root(),
            "dev",
            "UPDATE resources SET properties = ?, digest_form = 'legacy' WHERE env = ? AND address = ?",
            &[&legacy, "dev", "api.service"],
        )
        .await;
    assert_eq!(n, 1);
    // Another machine's key does not matter for legacy digests; ours plans clean.
    dev(&p, &vars, &["plan", "--detailed-exitcode"]).expect(0);
    let applied = dev(&p, &vars, &["apply", "--auto-approve"]).expect(0);
    assert!(
        applied.stderr().contains("1 secret digests upgraded"),
        "{}",
        applied.stderr()
    );
    let after = backend
        .fetch_text(
            p.root(),
            "dev",
            "SELECT properties FROM resources WHERE env = ? AND address = ?",
            &["dev", "api.service"],
        )
        .await;
    assert!(!after.contains(&plain_sha256(SECRET)) && after.contains("hmac-sha256:"));
    let form = backend
        .fetch_text(
            p.root(),
            "dev",
            "SELECT digest_form FROM resources WHERE env = ? AND address = ?",
            &["dev", "api.service"],
        )
        .await;
    assert_eq!(form, "hmac");
    let log = dev(&p, &vars, &["audit", "log", "--format", "json"])
        .expect(0)
        .json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "digest upgrade" && e["address"] == "api.service"),
        "the upgrade is audited"
    );
    dev(&p, &vars, &["plan", "--detailed-exitcode"]).expect(0);
    dev(&p, &vars, &["audit", "verify"]).expect(0);
}
