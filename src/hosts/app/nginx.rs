//! converge's nginx file for an app: the upstream `<app>_live` that points at the live colour
//! and, unless `server: false`, the server block. The first line names the live colour, so a
//! later run reads the switch back from the file itself. Every value written into the file is
//! a checked one ([`ServerName`], [`HostPath`], ports, converge's own names): nothing a
//! desired-state file gives can end a directive or start another.

use std::collections::BTreeMap;

use super::docker::{Colour, quote};
use super::spec::Nginx;
use crate::model::grammar::{HostPath, Name, ServerName};

/// The file's first line, `# converge app=NAME live=COLOUR`.
const MARK: &str = "# converge app=";

/// The nginx command converge runs through `sudo -n` (with `-c` when the app names a config),
/// as shell words.
pub fn command(n: &Nginx) -> String {
    match &n.config {
        Some(c) => format!("/usr/sbin/nginx -c {}", quote(c)),
        None => "/usr/sbin/nginx".into(),
    }
}

/// The commands the deploy user may run as root, as the sudoers line lists them.
pub fn root_commands(n: &Nginx) -> [String; 2] {
    let nginx = match &n.config {
        Some(c) => format!("/usr/sbin/nginx -c {c}"),
        None => "/usr/sbin/nginx".into(),
    };
    [format!("{nginx} -t"), format!("{nginx} -s reload")]
}

/// The sudoers line the README gives for `user` and this nginx.
pub fn sudoers_line(user: &str, n: &Nginx) -> String {
    format!(
        "{user} ALL=(root) NOPASSWD: {}",
        root_commands(n).join(", ")
    )
}

/// Where the app's file is.
pub fn path(app: &Name, n: &Nginx) -> HostPath {
    let text = format!(
        "{}/{app}.conf",
        n.include_dir.as_str().trim_end_matches('/')
    );
    // A checked directory and a checked name make a checked path.
    HostPath::try_from(text.as_str()).unwrap_or_else(|_| n.include_dir.clone())
}

/// What converge's access log keeps of each request, one JSON object a line: when, the status
/// sent, which upstream (colour port) answered and with what, and the times.
const LOG_FIELDS: &str = r#"{"time":"$time_iso8601","status":$status,"upstream":"$upstream_addr","upstream_status":"$upstream_status","request_time":$request_time,"upstream_response_time":"$upstream_response_time"}"#;

/// The app's own access log (converge's server block writes it; gates read it).
pub fn access_log(app: &Name, n: &Nginx) -> HostPath {
    let text = format!(
        "{}/{app}.access.log",
        n.include_dir.as_str().trim_end_matches('/')
    );
    HostPath::try_from(text.as_str()).unwrap_or_else(|_| n.include_dir.clone())
}

/// `file` without its access log lines: converge's file as releases before access logs wrote it.
pub fn without_access_log(file: &str) -> String {
    file.lines()
        .filter(|l| !l.starts_with("log_format converge_") && !l.starts_with("    access_log "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The upstream's name.
pub fn upstream(app: &Name) -> String {
    format!("{}_live", app.as_str().replace('-', "_"))
}

/// A colour's host ports, by web service: one per replica.
pub type Ports = BTreeMap<Name, Vec<u16>>;

/// The file for `app` with the live colour's web services on `ports`.
pub fn render(app: &Name, n: &Nginx, colour: Colour, ports: &Ports) -> String {
    let colours = format!("live={}", colour.as_str());
    let live = Share {
        colour,
        ports,
        weight: 100,
    };
    if !n.routes.is_empty() {
        return render_routed(app, n, &colours, &[live]);
    }
    render_upstream(app, n, &colours, &servers(&[live], first_port))
}

/// One colour of a canary split: its colour, its web services' host ports and its share of
/// requests (percent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share<'a> {
    /// The colour.
    pub colour: Colour,
    /// Its web services' host ports.
    pub ports: &'a Ports,
    /// Its percent of requests (1-99).
    pub weight: i32,
}

/// The file for `app` during a canary step: nginx's weighted round robin sends `old.weight`
/// percent of requests to the live colour and `new.weight` to the new one (each web service
/// alike). The first line still names the live colour, and the split (`canary=green:10`)
/// beside it.
pub fn render_split(app: &Name, n: &Nginx, old: Share, new: Share) -> String {
    let colours = format!(
        "live={} canary={}:{}",
        old.colour.as_str(),
        new.colour.as_str(),
        new.weight
    );
    if n.sticky {
        return render_sticky(app, n, &colours, old, new);
    }
    if !n.routes.is_empty() {
        return render_routed(app, n, &colours, &[old, new]);
    }
    render_upstream(app, n, &colours, &servers(&[old, new], first_port))
}

/// The one web service's ports of a file without routes.
fn first_port(ports: &Ports) -> Option<&[u16]> {
    ports.values().next().map(Vec::as_slice)
}

/// An upstream's `server` lines: each share's ports (as `port_of` finds them), weighted when
/// two colours share it. Each server weighs its colour's percent times the other colour's
/// count of servers, so the split is the step's percent whatever the replicas of each.
fn servers(shares: &[Share], port_of: impl Fn(&Ports) -> Option<&[u16]>) -> String {
    let found: Vec<(&[u16], i32)> = shares
        .iter()
        .filter_map(|s| {
            port_of(s.ports)
                .filter(|p| !p.is_empty())
                .map(|p| (p, s.weight))
        })
        .collect();
    let mut out = String::new();
    for (i, (ports, weight)) in found.iter().enumerate() {
        // The other colour's count of servers (none: this colour serves alone, unweighted).
        let others = match found.len() {
            2 => Some(found[1 - i].0.len() as i32),
            _ => None,
        };
        for port in *ports {
            out.push_str(&match others {
                Some(n) => format!(
                    "    server 127.0.0.1:{port} weight={} max_fails=0;\n",
                    weight * n
                ),
                None => format!("    server 127.0.0.1:{port} max_fails=0;\n"),
            });
        }
    }
    out
}

/// The upstream of web service `service` of `app` when routes name services: `suffix` is
/// `live`, a colour, or (sticky) the variable that picks one.
pub fn service_upstream(app: &Name, service: &Name, suffix: &str) -> String {
    format!("converge.{app}.{service}.{suffix}")
}

/// The web services the routes name, in the order they first appear.
fn routed_services(n: &Nginx) -> Vec<&Name> {
    let mut out: Vec<&Name> = Vec::new();
    for r in &n.routes {
        if !out.contains(&&r.service) {
            out.push(&r.service);
        }
    }
    out
}

/// A file with routes: an upstream per web service (`converge.<app>.<service>.live`, its
/// colours weighted during a canary step) and a server block per server name, a location per
/// path. A route to a service no colour runs is left out.
fn render_routed(app: &Name, n: &Nginx, colours: &str, shares: &[Share]) -> String {
    let mut out = format!("{MARK}{app} {colours}\n{EDIT_NOTE}");
    let mut up: BTreeMap<&Name, String> = BTreeMap::new();
    for service in routed_services(n) {
        let lines = servers(shares, |p| p.get(service).map(Vec::as_slice));
        if lines.is_empty() {
            continue;
        }
        let name = service_upstream(app, service, "live");
        out.push_str(&format!(
            "upstream {name} {{\n{lines}    keepalive 16;\n}}\n"
        ));
        up.insert(service, name);
    }
    out.push_str(&server_blocks(
        app,
        n,
        |service| up.get(service).cloned(),
        "",
    ));
    out
}

/// A canary split that keeps each client on one colour (open-source nginx has no sticky
/// directive): one upstream per colour (per web service, with routes); a client without
/// converge's cookie is given a colour by `split_clients` (the new one for `new.weight`
/// percent of them), a client with it keeps its colour (`map`: only `blue` or `green` are
/// taken from the cookie, anything else is a new client), and the answer sets the cookie.
fn render_sticky(app: &Name, n: &Nginx, colours: &str, old: Share, new: Share) -> String {
    let a = app.as_str().replace('-', "_");
    let upstream = |name: String, ports: &[u16]| {
        let servers: String = ports
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=0;\n"))
            .collect();
        format!("upstream {name} {{\n{servers}    keepalive 16;\n}}\n")
    };
    let mut upstreams = String::new();
    if n.routes.is_empty() {
        for s in [old, new] {
            if let Some(ports) = first_port(s.ports) {
                upstreams.push_str(&upstream(format!("{a}_{}", s.colour.as_str()), ports));
            }
        }
    } else {
        // A service only one colour runs gets that colour's port under both names, so a
        // client whose cookie names the other colour still reaches it.
        for service in routed_services(n) {
            for (s, other) in [(old, new), (new, old)] {
                if let Some(ports) = s.ports.get(service).or(other.ports.get(service)) {
                    upstreams.push_str(&upstream(
                        service_upstream(app, service, s.colour.as_str()),
                        ports,
                    ));
                }
            }
        }
    }
    let mut out = format!(
        "{MARK}{app} {colours}\n{EDIT_NOTE}{upstreams}split_clients \"${{remote_addr}}${{request_id}}\" ${a}_pick {{\n    {}% {};\n    * {};\n}}\nmap $cookie_converge_{a} ${a}_colour {{\n    blue blue;\n    green green;\n    default ${a}_pick;\n}}\n",
        new.weight,
        new.colour.as_str(),
        old.colour.as_str()
    );
    let cookie = format!(
        "        add_header Set-Cookie \"converge_{a}=${{{a}_colour}}; Path=/; HttpOnly\" always;\n"
    );
    if n.routes.is_empty() {
        out.push_str(&server_block(
            app,
            n,
            &format!("{a}_${{{a}_colour}}"),
            &cookie,
        ));
    } else {
        let runs =
            |service: &Name| old.ports.contains_key(service) || new.ports.contains_key(service);
        out.push_str(&server_blocks(
            app,
            n,
            |service| {
                runs(service).then(|| service_upstream(app, service, &format!("${{{a}_colour}}")))
            },
            &cookie,
        ));
    }
    out
}

/// The canary colour and its percent a file names (`None`: not split, or not ours).
pub fn split(file: &str) -> Option<(Colour, i32)> {
    let first = file.lines().next()?.strip_prefix(MARK)?;
    let (colour, weight) = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("canary="))?
        .split_once(':')?;
    Some((Colour::parse(colour)?, weight.parse().ok()?))
}

/// The line under the first: what an edit of the file means.
const EDIT_NOTE: &str =
    "# Written by converge: an edit is drift, and the next apply puts this back.\n";

/// The file around an upstream of `servers`, its first line naming `colours`.
fn render_upstream(app: &Name, n: &Nginx, colours: &str, servers: &str) -> String {
    let up = upstream(app);
    let mut out = format!(
        "{MARK}{app} {colours}\n{EDIT_NOTE}upstream {up} {{\n{servers}    keepalive 16;\n}}\n"
    );
    if n.server {
        out.push_str(&server_block(app, n, &up, ""));
    }
    out
}

/// The access log's format line (one per file).
fn log_format(app: &Name) -> String {
    let a = app.as_str().replace('-', "_");
    format!("log_format converge_{a} escape=json '{LOG_FIELDS}';\n")
}

/// converge's `server` block without routes: `location /` proxies to `upstream` (a name, or a
/// name built from a variable), with `extra` lines inside the location.
fn server_block(app: &Name, n: &Nginx, upstream: &str, extra: &str) -> String {
    format!(
        "{}{}",
        log_format(app),
        server(app, n, &n.server_name, &location("/", upstream, extra))
    )
}

/// converge's `server` blocks with routes: one per server name (in the order the routes first
/// name it), a location per path to the upstream `upstream_of` gives its service (`None`: no
/// colour runs the service, and its route is left out).
fn server_blocks(
    app: &Name,
    n: &Nginx,
    upstream_of: impl Fn(&Name) -> Option<String>,
    extra: &str,
) -> String {
    let mut names: Vec<&ServerName> = Vec::new();
    for r in &n.routes {
        let name = r.server_name.as_ref().unwrap_or(&n.server_name);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut out = log_format(app);
    for name in names {
        let mut locations = String::new();
        for r in n
            .routes
            .iter()
            .filter(|r| r.server_name.as_ref().unwrap_or(&n.server_name) == name)
        {
            let Some(up) = upstream_of(&r.service) else {
                continue;
            };
            let path = r.path.as_str();
            if path == "/" {
                locations.push_str(&location("/", &up, extra));
            } else {
                // `/api` itself, and everything below `/api/` (never `/apix`).
                locations.push_str(&location(&format!("= {path}"), &up, extra));
                locations.push_str(&location(&format!("{path}/"), &up, extra));
            }
        }
        if !locations.is_empty() {
            out.push_str(&server(app, n, name, &locations));
        }
    }
    out
}

/// One `location` that proxies to `upstream`, with `extra` lines inside.
fn location(path: &str, upstream: &str, extra: &str) -> String {
    format!(
        "    location {path} {{\n        proxy_pass http://{upstream};\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n        proxy_set_header Host $host;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n{extra}    }}\n"
    )
}

/// One `server` block for `server_name` around `locations`, logging to the app's access log.
fn server(app: &Name, n: &Nginx, server_name: &ServerName, locations: &str) -> String {
    let (listen, tls) = match &n.tls {
        Some((cert, key)) => (
            format!("{} ssl", n.listen),
            format!("    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"),
        ),
        None => (n.listen.to_string(), String::new()),
    };
    let a = app.as_str().replace('-', "_");
    format!(
        "server {{\n    listen {listen};\n    server_name {server_name};\n{tls}    access_log {} converge_{a};\n{locations}}}\n",
        access_log(app, n)
    )
}

/// The live colour a file names (`None`: not converge's file, or no file).
pub fn live_colour(file: &str) -> Option<Colour> {
    let first = file.lines().next()?.strip_prefix(MARK)?;
    first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("live="))
        .and_then(Colour::parse)
}

/// The script that installs the file (what `converge_data` prints) as the app's file, checks
/// it with `nginx -t` (putting the previous file back on failure, exit 3, printing only the
/// lines of nginx's answer about converge's own file) and reloads nginx.
pub fn install_script(app: &Name, n: &Nginx) -> String {
    let file = path(app, n);
    let f = quote(&file);
    let nginx = command(n);
    format!(
        "set -e\nf={f}\nif [ -f \"$f\" ]; then cp \"$f\" \"$f.previous\"; else rm -f \"$f.previous\"; fi\nconverge_data > \"$f.new\"\nmv \"$f.new\" \"$f\"\nif ! out=$(sudo -n {nginx} -t 2>&1); then\n  if [ -f \"$f.previous\" ]; then mv \"$f.previous\" \"$f\"; else rm -f \"$f\"; fi\n  mine=$(printf '%s\\n' \"$out\" | grep -F -- \"$f\" || true)\n  if [ -n \"$mine\" ]; then printf '%s\\n' \"$mine\" >&2; else printf '%s\\n' 'nginx -t failed on a file converge did not write (run it on the host to see why)' >&2; fi\n  exit 3\nfi\nrm -f \"$f.previous\"\nsudo -n {nginx} -s reload\n"
    )
}

/// The script that removes the app's file and reloads nginx.
pub fn remove_script(app: &Name, n: &Nginx) -> String {
    format!(
        "rm -f -- {}\nsudo -n {} -s reload\n",
        quote(&path(app, n)),
        command(n)
    )
}

/// The script that prints nginx's worker pids, one a line.
pub fn workers_script(n: &Nginx) -> String {
    format!("ps -o pid= --ppid \"$(cat -- {})\"", quote(&n.pid_file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::app::spec::Route;
    use crate::model::grammar::RoutePath;

    fn nginx() -> Nginx {
        Nginx {
            server_name: ServerName::try_from("app.example.com").unwrap(),
            listen: 80,
            server: true,
            tls: None,
            config: None,
            include_dir: HostPath::try_from("/etc/nginx/converge").unwrap(),
            pid_file: HostPath::try_from("/run/nginx.pid").unwrap(),
            sticky: false,
            routes: Vec::new(),
        }
    }

    fn name(n: &str) -> Name {
        Name::try_from(n).unwrap()
    }

    /// One web service's port, as a colour's ports.
    fn web(port: u16) -> Ports {
        [(name("web"), vec![port])].into()
    }

    #[test]
    fn a_canary_file_splits_by_weight_and_still_names_the_live_colour() {
        let app = Name::try_from("my-app").unwrap();
        let f = render_split(
            &app,
            &nginx(),
            Share {
                colour: Colour::Blue,
                ports: &web(21001),
                weight: 90,
            },
            Share {
                colour: Colour::Green,
                ports: &web(21002),
                weight: 10,
            },
        );
        assert_eq!(live_colour(&f), Some(Colour::Blue));
        assert_eq!(split(&f), Some((Colour::Green, 10)));
        assert!(f.contains("server 127.0.0.1:21001 weight=90 max_fails=0;"));
        assert!(f.contains("server 127.0.0.1:21002 weight=10 max_fails=0;"));
        assert_eq!(
            split(&render(&app, &nginx(), Colour::Blue, &web(21001))),
            None
        );
    }

    #[test]
    fn a_sticky_canary_picks_a_colour_per_client_and_keeps_it_by_cookie() {
        let app = Name::try_from("my-app").unwrap();
        let mut n = nginx();
        n.sticky = true;
        let share = |colour, ports, weight| Share {
            colour,
            ports,
            weight,
        };
        let f = render_split(
            &app,
            &n,
            share(Colour::Blue, &web(21001), 80),
            share(Colour::Green, &web(21002), 20),
        );
        assert_eq!(split(&f), Some((Colour::Green, 20)));
        assert!(f.contains("upstream my_app_blue {\n    server 127.0.0.1:21001 max_fails=0;"));
        assert!(f.contains("upstream my_app_green {\n    server 127.0.0.1:21002 max_fails=0;"));
        assert!(
            f.contains("$my_app_pick {\n    20% green;\n    * blue;\n}"),
            "{f}"
        );
        assert!(f.contains("map $cookie_converge_my_app $my_app_colour {\n    blue blue;\n    green green;\n    default $my_app_pick;\n}"), "{f}");
        assert!(
            f.contains("proxy_pass http://my_app_${my_app_colour};"),
            "{f}"
        );
        assert!(f.contains("add_header Set-Cookie \"converge_my_app=${my_app_colour}; Path=/; HttpOnly\" always;"), "{f}");
    }

    #[test]
    fn the_file_logs_each_request_as_json_and_its_form_before_logs_is_known() {
        let app = Name::try_from("my-app").unwrap();
        let f = render(&app, &nginx(), Colour::Green, &web(21001));
        assert!(f.contains("log_format converge_my_app escape=json '{\"time\":\"$time_iso8601\""));
        assert!(
            f.contains("    access_log /etc/nginx/converge/my-app.access.log converge_my_app;\n")
        );
        let old = without_access_log(&f);
        assert!(!old.contains("access_log") && !old.contains("log_format"));
        assert_eq!(old.lines().count(), f.lines().count() - 2);
        assert_eq!(live_colour(&old), Some(Colour::Green));
    }

    #[test]
    fn the_file_names_its_live_colour_and_routes_to_it() {
        let app = Name::try_from("my-app").unwrap();
        let f = render(&app, &nginx(), Colour::Green, &web(21001));
        assert_eq!(live_colour(&f), Some(Colour::Green));
        assert!(f.contains("server 127.0.0.1:21001"));
        assert!(f.contains("proxy_pass http://my_app_live;"));
        assert_eq!(live_colour("upstream x {}"), None);
        assert_eq!(
            sudoers_line("deploy", &nginx()),
            "deploy ALL=(root) NOPASSWD: /usr/sbin/nginx -t, /usr/sbin/nginx -s reload"
        );
        assert_eq!(
            path(&app, &nginx()).as_str(),
            "/etc/nginx/converge/my-app.conf"
        );
    }

    /// Routes: an upstream per web service, a server block per server name, `/api` as an
    /// exact location and a prefix below it (never `/apix`); a canary step weights each
    /// service's colours, and a service only the new colour runs is served by it alone.
    #[test]
    fn routes_give_each_web_service_its_upstream_and_locations() {
        let app = name("shop");
        let mut n = nginx();
        let route = |service: &str, path: &str, server: Option<&str>| Route {
            service: name(service),
            path: RoutePath::try_from(path).unwrap(),
            server_name: server.map(|s| ServerName::try_from(s).unwrap()),
        };
        n.routes = vec![
            route("web", "/", None),
            route("api", "/api", None),
            route("api", "/", Some("api.example.com")),
        ];
        let mut both = web(21001);
        both.insert(name("api"), vec![21002]);
        let f = render(&app, &n, Colour::Blue, &both);
        assert_eq!(live_colour(&f), Some(Colour::Blue));
        assert!(f.contains("upstream converge.shop.web.live {\n    server 127.0.0.1:21001 max_fails=0;\n    keepalive 16;\n}"), "{f}");
        assert!(f.contains("upstream converge.shop.api.live {\n    server 127.0.0.1:21002 max_fails=0;\n    keepalive 16;\n}"), "{f}");
        assert_eq!(f.matches("server {").count(), 2, "{f}");
        assert_eq!(f.matches("log_format").count(), 1, "{f}");
        let main = &f[f.find("server_name app.example.com;").unwrap()
            ..f.find("server_name api.example.com;").unwrap()];
        assert!(
            main.contains("    location / {\n        proxy_pass http://converge.shop.web.live;"),
            "{main}"
        );
        assert!(
            main.contains(
                "    location = /api {\n        proxy_pass http://converge.shop.api.live;"
            ),
            "{main}"
        );
        assert!(
            main.contains(
                "    location /api/ {\n        proxy_pass http://converge.shop.api.live;"
            ),
            "{main}"
        );
        let other = &f[f.find("server_name api.example.com;").unwrap()..];
        assert!(
            other.contains("    location / {\n        proxy_pass http://converge.shop.api.live;"),
            "{other}"
        );

        // A canary step: web in both colours, api new in green only.
        let old = web(21003);
        let share = |colour, ports, weight| Share {
            colour,
            ports,
            weight,
        };
        let split = render_split(
            &app,
            &n,
            share(Colour::Green, &old, 75),
            share(Colour::Blue, &both, 25),
        );
        assert_eq!(super::split(&split), Some((Colour::Blue, 25)));
        assert!(split.contains("upstream converge.shop.web.live {\n    server 127.0.0.1:21003 weight=75 max_fails=0;\n    server 127.0.0.1:21001 weight=25 max_fails=0;\n"), "{split}");
        assert!(
            split.contains(
                "upstream converge.shop.api.live {\n    server 127.0.0.1:21002 max_fails=0;\n"
            ),
            "{split}"
        );

        // Sticky: per-colour upstreams per service; the api's old-colour name reaches the
        // only colour that runs it.
        n.sticky = true;
        let sticky = render_split(
            &app,
            &n,
            share(Colour::Green, &old, 75),
            share(Colour::Blue, &both, 25),
        );
        assert!(
            sticky.contains(
                "upstream converge.shop.api.green {\n    server 127.0.0.1:21002 max_fails=0;"
            ),
            "{sticky}"
        );
        assert!(
            sticky.contains(
                "upstream converge.shop.web.green {\n    server 127.0.0.1:21003 max_fails=0;"
            ),
            "{sticky}"
        );
        assert!(
            sticky.contains("proxy_pass http://converge.shop.api.${shop_colour};"),
            "{sticky}"
        );

        // Back to a colour without the api: its routes are left out, nothing points nowhere.
        n.sticky = false;
        let back = render(&app, &n, Colour::Green, &old);
        assert!(!back.contains("api"), "{back}");
        assert!(
            back.contains("location / {\n        proxy_pass http://converge.shop.web.live;"),
            "{back}"
        );
    }

    /// Replicas: every replica is a server of the upstream, and a canary step's split is the
    /// step's percent whatever each colour's count (each server weighs its colour's percent
    /// times the other colour's count).
    #[test]
    fn replicas_are_servers_and_the_split_keeps_its_percent() {
        let app = name("shop");
        let (old, new): (Ports, Ports) = (
            [(name("web"), vec![21001])].into(),
            [(name("web"), vec![21002, 21003, 21004])].into(),
        );
        let live = render(&app, &nginx(), Colour::Green, &new);
        for p in [21002, 21003, 21004] {
            assert!(
                live.contains(&format!("    server 127.0.0.1:{p} max_fails=0;\n")),
                "{live}"
            );
        }
        let share = |colour, ports, weight| Share {
            colour,
            ports,
            weight,
        };
        let f = render_split(
            &app,
            &nginx(),
            share(Colour::Blue, &old, 90),
            share(Colour::Green, &new, 10),
        );
        // 1 × (90 × 3) against 3 × (10 × 1): 270 : 30, nine to one.
        assert!(
            f.contains("    server 127.0.0.1:21001 weight=270 max_fails=0;\n"),
            "{f}"
        );
        for p in [21002, 21003, 21004] {
            assert!(
                f.contains(&format!(
                    "    server 127.0.0.1:{p} weight=10 max_fails=0;\n"
                )),
                "{f}"
            );
        }
    }
}
