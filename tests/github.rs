//! converge in GitHub Actions: `plan --comment` against a local fake of the GitHub REST API
//! (one sticky comment per environment, found again across pages and edited in place; a 500
//! warns, or fails with `=required`), `::error` annotations and the step summary.

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response};
use support::serve::{Served, serve};
use support::{Moto, Project};

const TOKEN: &str = "ghs_test_token";

#[derive(Default)]
struct Fake {
    /// (id, body) of the pull request's comments.
    comments: Vec<(u64, String)>,
    next_id: u64,
    /// Method and path of every call.
    calls: Vec<String>,
    fail: bool,
}

/// The REST API of one repository, `octo/infra`, pull request 7, under `/api/v3` as on
/// Enterprise Server; 30 comments per page with `Link` headers.
fn github() -> (Served, Arc<Mutex<Fake>>) {
    let state = Arc::new(Mutex::new(Fake {
        next_id: 1000,
        // Someone else's comments first, so the marker search has to page.
        comments: (1..=45).map(|i| (i, format!("LGTM {i}"))).collect(),
        ..Fake::default()
    }));
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let (st, b) = (state.clone(), base.clone());
    let served = serve(move |req| {
        let (st, b) = (st.clone(), b.clone());
        async move {
            let mut s = st.lock().unwrap();
            s.calls
                .push(format!("{} {}", req.method, req.path_and_query));
            let reply = |status: u16, body: serde_json::Value| {
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap()
            };
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if auth != Some(&format!("Bearer {TOKEN}")) {
                return reply(401, serde_json::json!({"message": "Bad credentials"}));
            }
            if req.headers.get("x-github-api-version").is_none() {
                return reply(400, serde_json::json!({"message": "no API version"}));
            }
            if s.fail {
                return reply(500, serde_json::json!({"message": "Server Error"}));
            }
            let path = req.path.strip_prefix("/api/v3").unwrap_or("");
            match (req.method.clone(), path) {
                // Link headers name the repository by id, as GitHub's do.
                (Method::GET, "/repos/octo/infra/issues/7/comments")
                | (Method::GET, "/repositories/1/issues/7/comments") => {
                    let page: usize = req
                        .query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("page="))
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(1);
                    let per_page = 30;
                    let items: Vec<serde_json::Value> = s
                        .comments
                        .iter()
                        .skip((page - 1) * per_page)
                        .take(per_page)
                        .map(|(id, body)| serde_json::json!({"id": id, "body": body}))
                        .collect();
                    let mut r = Response::builder()
                        .status(200)
                        .header("content-type", "application/json");
                    if page * per_page < s.comments.len() {
                        r = r.header(
                            "link",
                            format!(
                                "<{}/api/v3/repositories/1/issues/7/comments?per_page=100&page={}>; rel=\"next\"",
                                b.get().unwrap(),
                                page + 1
                            ),
                        );
                    }
                    r.body(Full::new(Bytes::from(
                        serde_json::Value::from(items).to_string(),
                    )))
                    .unwrap()
                }
                (Method::POST, "/repos/octo/infra/issues/7/comments") => {
                    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                    s.next_id += 1;
                    let id = s.next_id;
                    s.comments
                        .push((id, body["body"].as_str().unwrap().to_string()));
                    reply(201, serde_json::json!({"id": id}))
                }
                (Method::PATCH, p) if p.starts_with("/repos/octo/infra/issues/comments/") => {
                    let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                    match s.comments.iter_mut().find(|(i, _)| *i == id) {
                        Some(c) => {
                            c.1 = body["body"].as_str().unwrap().to_string();
                            reply(200, serde_json::json!({"id": id}))
                        }
                        None => reply(404, serde_json::json!({"message": "Not Found"})),
                    }
                }
                _ => reply(404, serde_json::json!({"message": "Not Found"})),
            }
        }
    });
    base.set(served.base.clone()).unwrap();
    (served, state)
}

fn project(api: &Served, moto: &Moto) -> Project {
    let project = Project::example().with_moto(moto);
    let event = project.root().join("event.json");
    std::fs::write(
        &event,
        r#"{"action": "synchronize", "pull_request": {"number": 7}}"#,
    )
    .unwrap();
    project.with_env(vec![
        ("GITHUB_TOKEN".into(), TOKEN.into()),
        ("GITHUB_REPOSITORY".into(), "octo/infra".into()),
        ("GITHUB_API_URL".into(), format!("{}/api/v3", api.base)),
        ("GITHUB_EVENT_PATH".into(), event.display().to_string()),
    ])
}

fn ours(fake: &Mutex<Fake>) -> Vec<(u64, String)> {
    fake.lock()
        .unwrap()
        .comments
        .iter()
        .filter(|(_, b)| b.contains("<!-- converge:plan:"))
        .cloned()
        .collect()
}

#[test]
fn one_sticky_comment_per_environment_edited_in_place() {
    let moto = Moto::start();
    let (api, fake) = github();
    let p = project(&api, &moto);
    let out = p.converge(&["-e", "dev", "plan", "--comment"]).expect(0);
    assert!(
        out.stderr()
            .contains("Commented the plan on pull request #7"),
        "{}",
        out.stderr()
    );
    let first = ours(&fake);
    assert_eq!(first.len(), 1);
    assert!(first[0].1.starts_with("<!-- converge:plan:dev -->"));
    assert!(
        first[0]
            .1
            .contains("**Plan: 6 to add, 0 to change, 0 to replace, 0 to destroy.**")
    );

    // A later push: the same comment is found (on the second page) and edited.
    p.edit(
        "environments/dev.yaml",
        "      desired_count: 1\n      port: 8000",
        "      desired_count: 2\n      port: 8000",
    );
    let out = p.converge(&["-e", "dev", "plan", "--comment"]).expect(0);
    assert!(
        out.stderr()
            .contains("Updated the plan comment on pull request #7"),
        "{}",
        out.stderr()
    );
    let second = ours(&fake);
    assert_eq!(second.len(), 1, "still one comment");
    assert_eq!(second[0].0, first[0].0, "the same comment");
    assert_ne!(second[0].1, first[0].1, "with the new plan");
    assert!(
        fake.lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c.contains("page=2")),
        "paged"
    );
    assert!(
        fake.lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c.starts_with("PATCH /api/v3/repos/octo/infra/issues/comments/")),
        "edited in place"
    );

    // Another environment: its own comment.
    p.converge(&["-e", "staging", "plan", "--comment"])
        .expect(0);
    let all = ours(&fake);
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .any(|(_, b)| b.starts_with("<!-- converge:plan:staging -->"))
    );
}

#[test]
fn an_api_failure_warns_unless_the_comment_is_required() {
    let moto = Moto::start();
    let (api, fake) = github();
    fake.lock().unwrap().fail = true;
    let p = project(&api, &moto);
    let out = p.converge(&["-e", "dev", "plan", "--comment"]).expect(0);
    assert!(
        out.stderr().contains("warning: could not comment the plan"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("HTTP 500"), "{}", out.stderr());
    let out = p
        .converge(&["-e", "dev", "plan", "--comment=required"])
        .expect(1);
    assert!(
        out.stderr().contains("plan --comment=required"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("HTTP 500"), "{}", out.stderr());
}

#[test]
fn in_actions_errors_are_annotated_and_plans_go_to_the_step_summary() {
    let moto = Moto::start();
    let p = Project::example().with_moto(&moto);
    let summary = p.root().join("summary.md");
    let actions = |args: &[&str]| {
        let output = p
            .command(args)
            .current_dir(p.root())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        support::Run::from_output(output, args)
    };
    actions(&["-e", "dev", "plan"]).expect(0);
    actions(&["-e", "dev", "drift"]).expect(0);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.contains("<!-- converge:plan:dev -->"), "{text}");
    assert!(
        text.contains("| `+` | `api.service` | aws.ecs_service | create |"),
        "{text}"
    );
    assert!(text.contains("<!-- converge:drift:dev -->"), "{text}");

    p.edit(
        "environments/dev.yaml",
        "container_insights: false",
        "container_insights: maybe",
    );
    let out = actions(&["-e", "dev", "validate"]).expect(1);
    let line = out
        .stdout()
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("::error file=environments/dev.yaml,line="),
        "{}",
        out.stdout()
    );
    assert!(line.contains(",col="), "{line}");
    assert!(
        line.ends_with("::expected bool, found a string `maybe`"),
        "{line}"
    );
    // Outside Actions: no annotations.
    let plain = p.converge(&["-e", "dev", "validate"]).expect(1);
    assert!(!plain.stdout().contains("::error"), "{}", plain.stdout());
}
