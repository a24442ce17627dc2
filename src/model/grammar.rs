//! The grammars of values converge hands to a host, a shell, ssh, docker or nginx (DESIGN §11).
//! Every such value is untrusted: it comes from a desired-state file anyone can change in a pull
//! request, or back from state and hosts. Each kind of value has one grammar here, used twice:
//! as a schema type ([`Grammar`], checked at load with file:line:column, and again on resolved
//! values before any step uses them), and as a newtype with a private field that only its parser
//! builds ([`SshUser`], [`HostAddress`], …), which is all the ssh, docker and nginx builders take.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// A grammar a string property must follow, as a schema type carries it.
#[derive(Debug)]
pub struct Grammar {
    /// What the value is, for messages and the JSON Schema ("an SSH user name").
    pub describe: &'static str,
    /// A JSON Schema `pattern` equivalent to the check, when there is a simple one.
    pub pattern: Option<&'static str>,
    /// Whether `value` follows the grammar; the error says why not, in words.
    pub check: fn(&str) -> Result<(), Reason>,
}

/// Why a value breaks a grammar, in words (what a check returns).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Reason(pub String);

impl From<&str> for Reason {
    fn from(why: &str) -> Reason {
        Reason(why.to_string())
    }
}

/// Why a value does not follow its grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not {what}: {why}")]
pub struct GrammarError {
    /// The value as shown (quoted, control characters escaped).
    pub value: String,
    /// What it should have been.
    pub what: &'static str,
    /// Why it is not.
    pub why: String,
}

impl Grammar {
    /// Checks `value`, naming it (escaped) in the error.
    pub fn parse(&'static self, value: &str) -> Result<(), GrammarError> {
        (self.check)(value).map_err(|why| GrammarError {
            value: shown(value),
            what: self.describe,
            why: why.0,
        })
    }
}

/// `value` in backquotes with control characters escaped, safe to print on one line.
pub fn shown(value: &str) -> String {
    format!("`{}`", escape_controls(value))
}

/// `text` with every control character written as an escape (`\n`, `\u{1b}`), so what a file
/// gives can never start a new line or move the cursor in converge's output.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The first control character of `text` a plain string may not hold (any but tab, newline
/// and carriage return), with a word on why.
pub fn forbidden_control(text: &str) -> Option<String> {
    text.chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| {
            format!(
                "it holds the control character {} (only tab and newline may appear in a value)",
                c.escape_unicode()
            )
        })
}

fn no_controls(value: &str) -> Result<(), Reason> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(Reason(format!(
            "it holds the control character {}",
            c.escape_unicode()
        ))),
        None => Ok(()),
    }
}

fn not_empty(value: &str) -> Result<(), Reason> {
    if value.is_empty() {
        Err("it is empty".into())
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// A POSIX user name as `useradd` takes it: a letter or `_`, then letters, digits, `_`, `.`
/// and `-`; at most 32 characters. Never starts with `-` (ssh would read an option).
fn check_user(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)?;
    if v.len() > 32 {
        return Err("it is longer than 32 characters".into());
    }
    let mut chars = v.chars();
    let first = chars.next().unwrap_or('-');
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err("it must start with a letter or `_`".into());
    }
    match chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        Some(c) => Err(Reason(format!(
            "`{}` is not allowed (letters, digits, `_`, `.` and `-`)",
            escape_controls(&c.to_string())
        ))),
        None => Ok(()),
    }
}

/// One DNS label: letters, digits and inner `-`, 1 to 63 characters.
fn dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A DNS name (RFC 1123 labels, an optional final dot) or an IPv4 or IPv6 literal.
fn check_host(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)?;
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if v.starts_with('-') {
        return Err("it starts with `-`".into());
    }
    if v.len() > 253 {
        return Err("it is longer than 253 characters".into());
    }
    let name = v.strip_suffix('.').unwrap_or(v);
    if let Some(bad) = name.split('.').find(|l| !dns_label(l)) {
        return Err(Reason(format!(
            "`{}` is not a DNS label (letters, digits and inner dashes; or write an IP address)",
            escape_controls(bad)
        )));
    }
    Ok(())
}

/// An environment variable name a container gets: `[A-Za-z_][A-Za-z0-9_]*`.
fn check_env_name(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    let mut chars = v.chars();
    let first = chars.next().unwrap_or('0');
    let ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok && v.len() <= 256 {
        Ok(())
    } else {
        Err("write letters, digits and `_`, not starting with a digit".into())
    }
}

static IMAGE_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    // distribution/reference's grammar (what `docker pull` accepts), anchored.
    let alnum = "[a-z0-9]+";
    let separator = "(?:[._]|__|[-]+)";
    let component = format!("{alnum}(?:{separator}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let domain =
        format!(r"(?:{domain_component}(?:\.{domain_component})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?");
    let tag = r"[\w][\w.-]{0,127}";
    let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!(
        r"^(?:{domain}/)?{component}(?:/{component})*(?::{tag})?(?:@{digest})?$"
    ))
    .expect("the image reference grammar compiles")
});

/// An image reference as `docker pull` takes it: `[REGISTRY/]PATH[:TAG][@DIGEST]`.
fn check_image(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)?;
    if v.starts_with('-') {
        return Err("it starts with `-` (docker would read an option)".into());
    }
    if v.len() > 512 || !IMAGE_REFERENCE.is_match(v) {
        return Err(
            "write [REGISTRY/]REPOSITORY[:TAG][@DIGEST] (lowercase repository path)".into(),
        );
    }
    Ok(())
}

/// A registry server: a DNS name or IP literal, an optional `:PORT`.
fn check_registry(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)?;
    let (host, port) = match v.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (v, None),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    check_host(host)?;
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(Reason(format!("`{}` is not a port", escape_controls(p))));
    }
    Ok(())
}

/// An nginx `server_name`: a host name, `*.` before one, `.*` after one, `_`, or a `~` regular
/// expression; never whitespace, quotes, `;`, `{`, `}`, `$` or control characters (each would
/// end the directive or start another).
fn check_server_name(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)?;
    if let Some(c) = v
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'' | '\\' | '#'))
    {
        return Err(Reason(format!(
            "`{}` is not allowed in a server name",
            escape_controls(&c.to_string())
        )));
    }
    if v == "_" || v.starts_with('~') {
        return Ok(());
    }
    let name = v
        .strip_prefix("*.")
        .or_else(|| v.strip_prefix('.'))
        .unwrap_or(v);
    let name = name.strip_suffix(".*").unwrap_or(name);
    check_host(name).map_err(|_| {
        "write a host name (`*.` before it or `.*` after it allowed), `_`, or a `~regex`".into()
    })
}

/// A path on a host converge writes into a command or nginx's file: absolute, of letters,
/// digits and `/._-+@=,:` only, with no `.` or `..` component.
fn check_host_path(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)?;
    if !v.starts_with('/') {
        return Err("it must be absolute (start with `/`)".into());
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/._-+@=,:".contains(*c)))
    {
        return Err(Reason(format!(
            "`{}` is not allowed in a path (letters, digits and /._-+@=,:)",
            escape_controls(&c.to_string())
        )));
    }
    if v.split('/').any(|p| p == "." || p == "..") {
        return Err("it has a `.` or `..` component".into());
    }
    if v.len() > 1024 {
        return Err("it is longer than 1024 characters".into());
    }
    Ok(())
}

/// An HTTP request path converge sends in a probe: starts with `/`, visible ASCII only (no
/// spaces, no CR or LF that would end the request line).
fn check_url_path(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    if !v.starts_with('/') {
        return Err("it must start with `/`".into());
    }
    match v.chars().find(|c| !c.is_ascii_graphic()) {
        Some(c) => Err(Reason(format!(
            "{} is not allowed in a request path (visible ASCII only; percent-encode the rest)",
            if c == ' ' {
                "a space".to_string()
            } else {
                format!("`{}`", escape_controls(&c.to_string()))
            }
        ))),
        None if v.len() > 2048 => Err("it is longer than 2048 characters".into()),
        None => Ok(()),
    }
}

/// A path prefix nginx routes by: `/`, or segments of unreserved URL characters with no
/// trailing `/` (`/api`): nothing nginx would read as a regular expression or a directive.
fn check_route_path(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    if !v.starts_with('/') {
        return Err("it must start with `/`".into());
    }
    if v == "/" {
        return Ok(());
    }
    if v.ends_with('/') {
        return Err("write it without a trailing `/` (`/api` routes `/api` and `/api/...`)".into());
    }
    if v.len() > 256 {
        return Err("it is longer than 256 characters".into());
    }
    for segment in v[1..].split('/') {
        if segment.is_empty() {
            return Err("it has an empty segment (`//`)".into());
        }
        if segment == "." || segment == ".." {
            return Err("`.` and `..` are not path segments nginx routes by".into());
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._~-".contains(*c)))
        {
            return Err(Reason(format!(
                "`{}` is not allowed in a route's path (letters, digits, `.`, `_`, `~`, `-` between `/`)",
                escape_controls(&c.to_string())
            )));
        }
    }
    Ok(())
}

/// A name converge puts into container, network, file and nginx names (an app, a service):
/// lowercase letters, digits and inner dashes, at most 40.
fn check_name(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    let ok = v.len() <= 40
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("write lowercase letters, digits and inner dashes (at most 40)".into())
    }
}

/// A bind mount `SOURCE:TARGET[:ro|:rw]`: SOURCE a host path or a named volume, TARGET an
/// absolute path in the container.
fn check_volume(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)?;
    let parts: Vec<&str> = v.split(':').collect();
    let (source, target) = match parts.as_slice() {
        [s, t] | [s, t, "ro" | "rw"] => (*s, *t),
        _ => return Err("write SOURCE:TARGET or SOURCE:TARGET:ro".into()),
    };
    if source.starts_with('/') {
        check_host_path(source).map_err(|e| Reason(format!("its host path: {e}")))?;
    } else {
        check_volume_name(source).map_err(|e| Reason(format!("its volume name: {e}")))?;
    }
    check_host_path(target).map_err(|e| Reason(format!("its container path: {e}")))
}

/// A Docker volume name: a letter or digit, then letters, digits, `_`, `.` and `-`.
fn check_volume_name(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    let mut chars = v.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && v.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err("write a letter or digit, then letters, digits, `_`, `.` and `-`".into())
    }
}

/// `NAME`, `UID` or either of them then `:GROUP`.
fn check_container_user(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 32
            && p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    let ok = match v.split_once(':') {
        Some((u, g)) => part(u) && part(g),
        None => part(v),
    };
    if ok {
        Ok(())
    } else {
        Err("write NAME, UID or UID:GID (letters, digits, `_`, `.` and `-`)".into())
    }
}

/// Upper-case letters, digits and `_`, starting with a letter.
fn check_capability(v: &str) -> Result<(), Reason> {
    let ok = (2..=41).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_uppercase())
        && v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("write a capability in capitals, e.g. NET_BIND_SERVICE".into())
    }
}

/// `0` and three octal digits.
fn check_file_mode(v: &str) -> Result<(), Reason> {
    let ok = v.len() == 4 && v.starts_with('0') && v.chars().all(|c| ('0'..='7').contains(&c));
    if ok {
        Ok(())
    } else {
        Err("write 0 and three octal digits, e.g. 0400".into())
    }
}

/// `SIG` and capitals, digits or `+`; or a number.
fn check_signal(v: &str) -> Result<(), Reason> {
    let named = v.len() <= 15
        && v.strip_prefix("SIG").is_some_and(|n| {
            n.len() >= 2
                && n.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+')
        });
    let numbered = (1..=2).contains(&v.len()) && v.chars().all(|c| c.is_ascii_digit());
    if named || numbered {
        Ok(())
    } else {
        Err("write SIGTERM, SIGINT, SIGQUIT... or the signal's number".into())
    }
}

static ROLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(?:-cn|-us-gov)?:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
        .expect("the role ARN grammar compiles")
});

/// An IAM role ARN: `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
fn check_role_arn(v: &str) -> Result<(), Reason> {
    if ROLE.is_match(v) {
        Ok(())
    } else {
        Err("write arn:aws:iam::ACCOUNT:role/NAME".into())
    }
}

/// A path on the machine running converge, as a file gives it (a key file, known_hosts):
/// no control characters; where it may point is checked when it is used.
fn check_local_path(v: &str) -> Result<(), Reason> {
    not_empty(v)?;
    no_controls(v)
}

/// An S3 bucket name: 3 to 63 lowercase letters, digits, `.` and `-`, a letter or digit at
/// each end.
fn check_s3_bucket(v: &str) -> Result<(), Reason> {
    let ok = (3..=63).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("write 3 to 63 lowercase letters, digits, `.` and `-`, beginning and ending with a letter or digit".into())
    }
}

/// An S3 key prefix: printable ASCII without spaces or backslashes, at most 512 characters
/// ("" for none).
fn check_s3_prefix(v: &str) -> Result<(), Reason> {
    if v.len() <= 512 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        Ok(())
    } else {
        Err("write printable characters other than spaces and `\\` (at most 512)".into())
    }
}

// ---------------------------------------------------------------------------------------------
// The grammars, as schema types carry them.

/// An SSH login user.
pub static SSH_USER: Grammar = Grammar {
    describe: "a user name",
    pattern: Some("^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"),
    check: check_user,
};
/// A host's address.
pub static HOST_ADDRESS: Grammar = Grammar {
    describe: "a host name or IP address",
    pattern: None,
    check: check_host,
};
/// A container environment variable's name.
pub static ENV_NAME: Grammar = Grammar {
    describe: "an environment variable name",
    pattern: Some("^[A-Za-z_][A-Za-z0-9_]*$"),
    check: check_env_name,
};
/// A container image reference.
pub static IMAGE: Grammar = Grammar {
    describe: "an image reference",
    pattern: None,
    check: check_image,
};
/// A registry server (`host[:port]`).
pub static REGISTRY_SERVER: Grammar = Grammar {
    describe: "a registry server (HOST or HOST:PORT)",
    pattern: None,
    check: check_registry,
};
/// An nginx server name.
pub static SERVER_NAME: Grammar = Grammar {
    describe: "an nginx server name",
    pattern: None,
    check: check_server_name,
};
/// An absolute path on a host.
pub static HOST_PATH: Grammar = Grammar {
    describe: "an absolute path on the host",
    pattern: Some("^/[A-Za-z0-9/._+@=,:-]*$"),
    check: check_host_path,
};
/// An HTTP request path.
pub static URL_PATH: Grammar = Grammar {
    describe: "a request path",
    pattern: Some("^/[!-~]*$"),
    check: check_url_path,
};
/// A path prefix nginx routes to a service (`/`, `/api`, `/static/v2`).
pub static ROUTE_PATH: Grammar = Grammar {
    describe: "a path prefix (`/` or `/segment/...`)",
    pattern: Some("^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$"),
    check: check_route_path,
};
/// A name converge builds container, network and file names from.
pub static NAME: Grammar = Grammar {
    describe: "a name (lowercase letters, digits and dashes)",
    pattern: Some("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"),
    check: check_name,
};
/// A bind mount.
pub static VOLUME: Grammar = Grammar {
    describe: "a mount (SOURCE:TARGET[:ro])",
    pattern: None,
    check: check_volume,
};
/// An IAM role's ARN.
pub static ROLE_ARN: Grammar = Grammar {
    describe: "an IAM role ARN",
    pattern: Some("^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"),
    check: check_role_arn,
};
/// An S3 bucket's name.
pub static S3_BUCKET: Grammar = Grammar {
    describe: "an S3 bucket name",
    pattern: Some("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    check: check_s3_bucket,
};
/// An S3 key prefix.
pub static S3_PREFIX: Grammar = Grammar {
    describe: "an S3 key prefix",
    pattern: Some("^[!-[\\]-~]{0,512}$"),
    check: check_s3_prefix,
};
/// The user a container runs as.
pub static CONTAINER_USER: Grammar = Grammar {
    describe: "a container user (NAME, UID or UID:GID)",
    pattern: Some("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$"),
    check: check_container_user,
};
/// A Linux capability's name, as Docker takes it (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
pub static CAPABILITY: Grammar = Grammar {
    describe: "a capability name",
    pattern: Some("^[A-Z][A-Z0-9_]{1,40}$"),
    check: check_capability,
};
/// A signal's name or number (`SIGTERM`, `SIGRTMIN+3`, `15`).
pub static SIGNAL: Grammar = Grammar {
    describe: "a signal (SIGNAME or its number)",
    pattern: Some("^(SIG[A-Z0-9+]{2,12}|[0-9]{1,2})$"),
    check: check_signal,
};
/// A file's permissions in octal (`0400`).
pub static FILE_MODE: Grammar = Grammar {
    describe: "file permissions in octal (0400)",
    pattern: Some("^0[0-7]{3}$"),
    check: check_file_mode,
};
/// A path on the machine running converge.
pub static LOCAL_PATH: Grammar = Grammar {
    describe: "a file path",
    pattern: None,
    check: check_local_path,
};

// ---------------------------------------------------------------------------------------------
// Newtypes the builders take: each built only by its parser.

macro_rules! checked {
    ($(#[$doc:meta])* $name:ident, $grammar:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The value, known to follow its grammar.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = GrammarError;
            fn try_from(value: &str) -> Result<Self, GrammarError> {
                $grammar.parse(value)?;
                Ok($name(value.to_string()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

checked!(
    /// A user converge logs in as ([`SSH_USER`]).
    SshUser,
    SSH_USER
);
checked!(
    /// A host's address ([`HOST_ADDRESS`]).
    HostAddress,
    HOST_ADDRESS
);
checked!(
    /// A container environment variable's name ([`ENV_NAME`]).
    EnvName,
    ENV_NAME
);
checked!(
    /// An image reference ([`IMAGE`]).
    ImageRef,
    IMAGE
);
checked!(
    /// A registry server ([`REGISTRY_SERVER`]).
    RegistryServer,
    REGISTRY_SERVER
);
checked!(
    /// An nginx server name ([`SERVER_NAME`]).
    ServerName,
    SERVER_NAME
);
checked!(
    /// An absolute path on a host ([`HOST_PATH`]).
    HostPath,
    HOST_PATH
);
checked!(
    /// An HTTP request path ([`URL_PATH`]).
    UrlPath,
    URL_PATH
);
checked!(
    /// A path prefix nginx routes to a service ([`ROUTE_PATH`]).
    RoutePath,
    ROUTE_PATH
);
checked!(
    /// An app or service name ([`NAME`]).
    Name,
    NAME
);
checked!(
    /// A bind mount ([`VOLUME`]).
    Volume,
    VOLUME
);

/// A name is kept (in rollout records) as its text, and read back through its grammar: a
/// stored name that is not one is a decode error, never a default.
impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Name::try_from(text.as_str()).map_err(serde::de::Error::custom)
    }
}

impl ImageRef {
    /// The repository: the reference without its tag and digest.
    pub fn repository(&self) -> &str {
        let no_digest = self.0.split('@').next().unwrap_or(&self.0);
        match no_digest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => no_digest,
        }
    }
}

impl RegistryServer {
    /// The host part, without its port.
    pub fn host(&self) -> &str {
        match self.0.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => &self.0,
        }
    }
}

impl Volume {
    /// The source (a host path, or a named volume) and the container path.
    pub fn parts(&self) -> (&str, &str, bool) {
        let mut it = self.0.split(':');
        let source = it.next().unwrap_or_default();
        let target = it.next().unwrap_or_default();
        (source, target, it.next() == Some("ro"))
    }

    /// Whether its source is a host path (not a named volume).
    pub fn is_bind(&self) -> bool {
        self.0.starts_with('/')
    }
}

/// Host paths whose mount gives a container the host (or its Docker daemon): mounting one is
/// legal but rarely meant, and `validate` and `plan` warn.
pub const SENSITIVE_HOST_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/root",
    "/boot",
    "/proc",
    "/sys",
    "/dev",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/lib/docker",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/home",
];

/// Whether mounting host path `source` hands over the host: one of
/// [`SENSITIVE_HOST_PATHS`], or a path above or inside `/etc`, `/root`, `/boot`, `/proc`,
/// `/sys`, `/dev` and the Docker daemon's files.
pub fn mounts_the_host(source: &str) -> bool {
    let source = source.trim_end_matches('/');
    let source = if source.is_empty() { "/" } else { source };
    SENSITIVE_HOST_PATHS.iter().any(|p| {
        source == *p
            || (*p != "/"
                && matches!(
                    *p,
                    "/etc" | "/root" | "/boot" | "/proc" | "/sys" | "/dev" | "/var/lib/docker"
                )
                && source.starts_with(&format!("{p}/")))
    })
}

static SECRET_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws(?:-cn|-us-gov|-iso|-iso-b)?:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}(?::::[A-Za-z0-9_-]{1,64})?$",
    )
    .expect("the secret ARN grammar compiles")
});

static PARAMETER_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws(?:-cn|-us-gov|-iso|-iso-b)?:ssm:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:parameter/[A-Za-z0-9/_.-]{1,2048}$",
    )
    .expect("the parameter ARN grammar compiles")
});

/// Whether `value` is the full ARN of a Secrets Manager secret (optionally pinned to a
/// version as converge writes it, `ARN:::VERSION`).
pub fn is_secret_arn(value: &str) -> bool {
    SECRET_ARN.is_match(value)
}

/// Whether `value` is the full ARN of an SSM parameter.
pub fn is_parameter_arn(value: &str) -> bool {
    PARAMETER_ARN.is_match(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bucket names and key prefixes by S3's rules: what the regex pattern (for editors) and the
    /// check (for converge) accept agree.
    #[test]
    fn s3_buckets_and_prefixes_follow_s3s_rules() {
        let pattern = Regex::new(S3_BUCKET.pattern.unwrap()).unwrap();
        for ok in ["db-backups", "a.b.c", "abc", "x1-backups.eu"] {
            assert!(check_s3_bucket(ok).is_ok() && pattern.is_match(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Backups",
            "-db",
            "db-",
            "db_backups",
            "db backups",
            &"a".repeat(64),
        ] {
            assert!(
                check_s3_bucket(bad).is_err() && !pattern.is_match(bad),
                "{bad:?}"
            );
        }
        let pattern = Regex::new(S3_PREFIX.pattern.unwrap()).unwrap();
        for ok in ["", "prod/", "team-a/db/2026"] {
            assert!(check_s3_prefix(ok).is_ok() && pattern.is_match(ok), "{ok}");
        }
        for bad in ["a b", "a\\b", "tab\t", "new\nline"] {
            assert!(
                check_s3_prefix(bad).is_err() && !pattern.is_match(bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn users_are_posix_names_and_never_options() {
        for ok in ["deploy", "converge-deploy", "_svc", "a.b", "Admin1"] {
            assert!(SshUser::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-oProxyCommand=touch /tmp/PWNED;false",
            "",
            "a b",
            "a@b",
            "1abc",
            "x\0",
            "deploy\n",
            &"a".repeat(33),
        ] {
            assert!(SshUser::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_are_host_names_or_ip_literals() {
        for ok in [
            "127.0.0.1",
            "::1",
            "fe80::1",
            "vm.example.com",
            "vm-1.internal.",
            "localhost",
        ] {
            assert!(HostAddress::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1 *",
            "-oProxyCommand=x",
            "a..b",
            "host_name",
            "*",
            "[::1]",
            "a\nb",
            "",
        ] {
            assert!(HostAddress::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_names_are_shell_names() {
        assert!(EnvName::try_from("DATABASE_URL").is_ok());
        assert!(EnvName::try_from("_x1").is_ok());
        for bad in ["A=1; touch /tmp/x; B", "1X", "A-B", "", "A B", "Ä"] {
            assert!(EnvName::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn images_follow_the_reference_grammar() {
        for ok in [
            "nginx",
            "converge-test/bg-switch:v2",
            "127.0.0.1:5000/app/web:sha-abc123f",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/api:1.2.3",
            "reg.example.com/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "localhost:5000/x:y",
        ] {
            assert!(ImageRef::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "--privileged",
            "-v/:/host",
            "Upper/Case",
            "app:tag with space",
            "app;rm -rf /",
            "app\0",
            "",
        ] {
            assert!(ImageRef::try_from(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ImageRef::try_from("127.0.0.1:5000/app/web:v1")
                .unwrap()
                .repository(),
            "127.0.0.1:5000/app/web"
        );
    }

    #[test]
    fn registry_servers_are_hosts_with_an_optional_port() {
        for ok in [
            "ghcr.io",
            "127.0.0.1:5000",
            "myreg.azurecr.io",
            "[::1]:5000",
        ] {
            assert!(RegistryServer::try_from(ok).is_ok(), "{ok}");
        }
        for bad in ["--help", "evil.com/path", "a b", "host:0", "host:x"] {
            assert!(RegistryServer::try_from(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RegistryServer::try_from("127.0.0.1:5000").unwrap().host(),
            "127.0.0.1"
        );
    }

    #[test]
    fn server_names_cannot_end_a_directive() {
        for ok in [
            "app.example.com",
            "*.example.com",
            "example.*",
            "_",
            "~^w+$",
        ] {
            assert!(ServerName::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "x\nlocation /files/ { alias /; autoindex on; }",
            "x; include /etc/shadow",
            "a b",
            "a\"b",
            "~a{b}",
            "",
        ] {
            assert!(ServerName::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_paths_are_absolute_and_plain() {
        assert!(HostPath::try_from("/etc/nginx/converge").is_ok());
        assert!(HostPath::try_from("/run/nginx.pid").is_ok());
        for bad in [
            "relative",
            "/etc/ssl/a b.pem",
            "/x;include /etc/shadow",
            "/a/../etc",
            "/a\nb",
            "/a'b",
            "/a$b",
        ] {
            assert!(HostPath::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_paths_cannot_split_a_request() {
        assert!(UrlPath::try_from("/health?x=1").is_ok());
        for ok in ["/", "/api", "/static/v2", "/a.b_c~d-e"] {
            assert!(RoutePath::try_from(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "api", "/api/", "//", "/a//b", "/..", "/a b", "/a;b", "/a{b", "/~*", "/a$b", "/a?b",
        ] {
            assert!(RoutePath::try_from(bad).is_err(), "{bad:?}");
        }
        for bad in ["/x\r\nHost: evil", "health", "/a b", "/\u{7f}"] {
            assert!(UrlPath::try_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn volumes_and_the_paths_that_hand_over_the_host() {
        assert!(Volume::try_from("/srv/a:/data").is_ok());
        assert!(Volume::try_from("pgdata:/var/lib/postgresql/data:ro").is_ok());
        for bad in ["/a", "/a:rel", "/a b:/x", "-v:/x", "/a:/b:rx"] {
            assert!(Volume::try_from(bad).is_err(), "{bad:?}");
        }
        for p in [
            "/",
            "/etc",
            "/etc/",
            "/var/run/docker.sock",
            "/etc/ssh",
            "/proc/1",
        ] {
            assert!(mounts_the_host(p), "{p}");
        }
        for p in ["/srv/data", "/var/lib/app", "/etcetera"] {
            assert!(!mounts_the_host(p), "{p}");
        }
    }

    #[test]
    fn secret_arns_are_whole() {
        assert!(is_secret_arn(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password-AbCdEf"
        ));
        assert!(is_secret_arn(
            "arn:aws:secretsmanager:eu-west-2:123456789012:secret:app/db-AbCdEf:::3f2c"
        ));
        assert!(is_parameter_arn(
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/db"
        ));
        for bad in [
            "arn:hunter2",
            "arn:aws:secretsmanager:hunter2",
            "arn:aws:secretsmanager:us-east-1:1234:secret:x",
            "arn:aws:s3:::bucket",
        ] {
            assert!(!is_secret_arn(bad) && !is_parameter_arn(bad), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_escaped_for_display() {
        assert_eq!(escape_controls("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(forbidden_control("line\nnext\ttab"), None);
        assert!(forbidden_control("nul\0").is_some());
    }
}
