//! Property tests of every builder of a remote script and of the nginx file (issue 21):
//! arbitrary strings go in, and the host's shell sees exactly one argument per value (run
//! through `sh -n` and a real `sh` whose `docker` prints its arguments), the data a script
//! carries arrives byte for byte, and nginx sees exactly one directive value per setting (the
//! file keeps its shape and passes `nginx -t`).

use std::path::Path;
use std::process::{Command, Stdio};

use converge::hosts::app::docker::{Word, quote};
use converge::hosts::app::host::pull_script;
use converge::hosts::app::nginx;
use converge::hosts::app::spec::{Nginx, Registry, RegistryAuth, Route};
use converge::hosts::ssh::wrap_script;
use converge::model::grammar::{HostPath, ImageRef, Name, RegistryServer, RoutePath, ServerName};
use converge::model::secret::Secret;
use proptest::prelude::*;

/// Any text converge quotes (every grammar refuses NUL, so a word never holds one).
struct Text(String);

impl Word for Text {
    fn word(&self) -> &str {
        &self.0
    }
}

/// Runs `script` the way a host does (`sh -s`, wrapped, with `data`), with `prelude` defined
/// first; returns stdout. `sh -n` must accept it too.
fn sh(prelude: &str, script: &str, data: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let text = format!("{prelude}{}", wrap_script(script, data));
    let syntax = Command::new("sh")
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut syntax = syntax;
    syntax
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = syntax.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "sh -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let mut child = Command::new("sh")
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    out.stdout
}

/// Argument lists a stub `docker` was called with, one per line of NUL-separated words.
fn calls(out: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(out)
        .split('\u{1e}')
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.split('\0')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// A `docker` that records its arguments (on stdout, and to fd 3 so command substitutions do
/// not swallow them) and reads its stdin (the password) into the record as `stdin=…`.
const STUB: &str = "exec 3>&1\ndocker() { for a in \"$@\"; do printf '%s\\0' \"$a\" >&3; done; case \"$*\" in *--password-stdin*) printf 'stdin=%s\\0' \"$(cat)\" >&3;; esac; printf '\\036' >&3; }\nmktemp() { echo /tmp/converge-builder-test; }\nrm() { :; }\n";

fn image() -> impl Strategy<Value = ImageRef> {
    (
        prop::option::of("[a-z0-9]{1,8}(\\.[a-z]{2,4})?(:[0-9]{2,5})?"),
        "[a-z0-9]{1,8}([._-][a-z0-9]{1,6})?(/[a-z0-9]{1,8}){0,2}",
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}"),
    )
        .prop_filter_map("an image reference", |(reg, path, tag)| {
            let mut s = String::new();
            if let Some(r) = reg {
                s.push_str(&r);
                s.push('/');
            }
            s.push_str(&path);
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            ImageRef::try_from(s.as_str()).ok()
        })
}

fn server() -> impl Strategy<Value = RegistryServer> {
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z]{2,5}){0,2}(:[1-9][0-9]{0,3})?"
        .prop_filter_map("a registry server", |s| {
            RegistryServer::try_from(s.as_str()).ok()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Any text without NUL is one argument, exactly, to the host's shell.
    #[test]
    fn a_quoted_word_is_one_argument_exactly(words in prop::collection::vec("[^\u{0}]{0,40}", 1..5)) {
        let script: String = words
            .iter()
            .map(|w| format!("printf '%s\\0' {}\n", quote(&Text(w.clone()))))
            .collect();
        let out = sh("", &script, None);
        let seen: Vec<String> = String::from_utf8_lossy(&out)
            .split('\0')
            .map(str::to_string)
            .collect();
        prop_assert_eq!(&seen[..words.len()], &words[..]);
    }

    /// A script's data reaches it byte for byte, whatever the bytes.
    #[test]
    fn script_data_arrives_byte_for_byte(data in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(sh("", "converge_data", Some(&data)), data);
    }

    /// The pull script's docker sees the login and each image as one argument each, and the
    /// password only on stdin.
    #[test]
    fn the_pull_script_passes_each_value_as_one_argument(
        images in prop::collection::vec(image(), 1..3),
        server in server(),
        user in "[A-Za-z0-9@._+=$;&|()-]{1,16}",
        password in "pw-[^\\p{Cc}]{5,30}",
    ) {
        let registry = Registry { server: server.clone(), auth: RegistryAuth::Anonymous };
        let (script, data) = pull_script(
            Some(&registry),
            &images,
            Some((user.clone(), Secret::new(password.clone()))),
        );
        prop_assert!(!script.contains(&password));
        let out = sh(STUB, &script, data.as_deref().map(str::as_bytes));
        let seen = calls(&out);
        let mut expected = vec![vec![
            "login".to_string(),
            format!("--username={user}"),
            "--password-stdin".into(),
            "--".into(),
            server.to_string(),
            format!("stdin={password}"),
        ]];
        for i in &images {
            expected.push(vec!["pull".into(), "-q".into(), "--".into(), i.to_string()]);
        }
        prop_assert_eq!(seen, expected);
    }

    /// Without credentials, each image is inspected, then pulled, as one argument.
    #[test]
    fn the_anonymous_pull_script_passes_each_image_as_one_argument(images in prop::collection::vec(image(), 1..4)) {
        let (script, data) = pull_script(None, &images, None);
        prop_assert!(data.is_none());
        let seen = calls(&sh(STUB, &script, None));
        let inspected: Vec<Vec<String>> = images
            .iter()
            .map(|i| vec!["image".into(), "inspect".into(), "--".into(), i.to_string()])
            .collect();
        // The stub succeeds, so nothing is pulled: every image was "there".
        prop_assert_eq!(seen, inspected);
    }
}

/// nginx settings from checked values.
fn settings(server_name: &ServerName, dir: &Path, tls: Option<(HostPath, HostPath)>) -> Nginx {
    Nginx {
        server_name: server_name.clone(),
        listen: 18_080,
        server: true,
        tls,
        config: None,
        include_dir: HostPath::try_from(dir.to_str().unwrap()).unwrap(),
        pid_file: HostPath::try_from("/run/nginx.pid").unwrap(),
        sticky: false,
        routes: Vec::new(),
    }
}

/// One web service's host port, as a colour's ports.
fn ports(service: &str, port: u16) -> nginx::Ports {
    [(Name::try_from(service).unwrap(), vec![port])].into()
}

/// The `;`, `{` and `}` of a file: its directive structure.
fn shape(file: &str) -> (usize, usize, usize) {
    (
        file.matches(';').count(),
        file.matches('{').count(),
        file.matches('}').count(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Whatever server name the grammar takes, converge's file keeps its shape (no directive
    /// added or ended by the value) and nginx accepts it (`nginx -t`), TLS paths included.
    #[test]
    fn the_nginx_file_holds_each_value_as_one_directive_value(
        server_name in "(\\*\\.)?[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,3}|_"
            .prop_filter_map("a server name", |s| ServerName::try_from(s.as_str()).ok()),
        cert in "[A-Za-z0-9._+@=,:-]{1,16}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let app = Name::try_from("prop").unwrap();
        let blue = converge::hosts::app::docker::Colour::Blue;
        let baseline = nginx::render(&app, &settings(&ServerName::try_from("a.test").unwrap(), dir.path(), None), blue, &ports("web", 21_000));
        let file = nginx::render(&app, &settings(&server_name, dir.path(), None), blue, &ports("web", 21_000));
        prop_assert_eq!(shape(&file), shape(&baseline), "{}", file);
        let line = file.lines().find(|l| l.trim_start().starts_with("server_name")).unwrap();
        prop_assert_eq!(line.trim(), format!("server_name {server_name};"));
        nginx_accepts(dir.path(), &file)?;
        // A canary step's split, plain and sticky (per-colour upstreams, split_clients, a map
        // of converge's cookie), under a name with a dash: nginx accepts both.
        let green = converge::hosts::app::docker::Colour::Green;
        let share = |colour, ports, weight| nginx::Share { colour, ports, weight };
        let dashed = Name::try_from("prop-app").unwrap();
        let mut sticky = settings(&server_name, dir.path(), None);
        let (old, new) = (ports("web", 21_000), ports("web", 21_001));
        for keep in [false, true] {
            sticky.sticky = keep;
            let split = nginx::render_split(&dashed, &sticky, share(blue, &old, 70), share(green, &new, 30));
            nginx_accepts(dir.path(), &split)?;
        }
        // Routes: two web services, one of them new in the green colour, under this server
        // name and another: the live file, a split and a sticky split all pass nginx -t.
        let mut routed = settings(&server_name, dir.path(), None);
        let route = |service: &str, path: &str, name: Option<&str>| Route {
            service: Name::try_from(service).unwrap(),
            path: RoutePath::try_from(path).unwrap(),
            server_name: name.map(|n| ServerName::try_from(n).unwrap()),
        };
        routed.routes = vec![
            route("web", "/", None),
            route("api", "/api/v1", None),
            route("api", "/", Some("api.prop.test")),
        ];
        let mut both = ports("web", 21_001);
        both.insert(Name::try_from("api").unwrap(), vec![21_002, 21_004]);
        nginx_accepts(dir.path(), &nginx::render(&dashed, &routed, green, &both))?;
        for keep in [false, true] {
            routed.sticky = keep;
            let split = nginx::render_split(&dashed, &routed, share(blue, &old, 70), share(green, &both, 30));
            nginx_accepts(dir.path(), &split)?;
        }
        // TLS files: one directive value each (nginx -t would need real files to accept them).
        let Ok(path) = HostPath::try_from(format!("{}/{cert}", dir.path().display()).as_str()) else {
            return Ok(());
        };
        let tls = nginx::render(&app, &settings(&server_name, dir.path(), Some((path.clone(), path.clone()))), blue, &ports("web", 21_000));
        prop_assert_eq!(shape(&tls).0, shape(&baseline).0 + 2, "{}", tls);
        let expected = format!("    ssl_certificate {path};\n    ssl_certificate_key {path};\n");
        prop_assert!(tls.contains(&expected), "{}", tls);
    }

    /// Any text at all is either refused as a server name, or holds nothing that ends an nginx
    /// directive or opens a block.
    #[test]
    fn a_server_name_the_grammar_takes_cannot_end_a_directive(raw in "[^\u{0}]{1,40}") {
        if let Ok(name) = ServerName::try_from(raw.as_str()) {
            prop_assert!(!name.as_str().contains([';', '{', '}', '"', '\'', ' ', '\n', '\t', '#']), "{}", name);
        }
    }
}

/// `nginx -t` of a main file that includes `file` (in its own prefix directory).
fn nginx_accepts(dir: &Path, file: &str) -> Result<(), TestCaseError> {
    std::fs::write(dir.join("app.conf"), file).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server_names_hash_bucket_size 128;\n  include {d}/app.conf;\n}}\n"
        ),
    )
    .unwrap();
    let out = Command::new("/usr/sbin/nginx")
        .args(["-t", "-q", "-c"])
        .arg(dir.join("nginx.conf"))
        .output()
        .unwrap();
    prop_assert!(
        out.status.success(),
        "nginx -t refused:\n{file}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
