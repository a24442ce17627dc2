//! Decoding: an environment file's sections (providers, variables, budget, notify), resource
//! and module-instance declarations, module files, and literal values, with located errors.

use super::*;
use marked_yaml::types::MarkedMappingNode;

impl Loader<'_> {
    /// Decodes environment file `file` (named `name`): its sections in order, then its
    /// resources and module instances; the providers it configures.
    pub(super) fn load_environment(
        &mut self,
        file: usize,
        name: &str,
        overrides: &VarOverrides,
    ) -> Providers {
        let f = self.files[file].clone();
        let doc = match yaml::parse(&f, file) {
            Ok(doc) => doc,
            Err(e) => {
                self.errors.push(e);
                return Providers::default();
            }
        };
        let Some(top) = yaml::expect_mapping(&f, &doc, "an environment file", &mut self.errors)
        else {
            return Providers::default();
        };
        yaml::reject_unknown_keys(&f, top, ENV_KEYS, "the environment file", &mut self.errors);
        self.check_environment_name(file, top, name);
        let providers = self.load_providers(file, top.get_node("providers"));
        self.load_budget(file, top);
        self.load_variables(file, top.get_node("variables"), overrides);
        // After the variables: the webhook may come from one (a sensitive variable keeps a
        // Slack URL out of the files).
        self.load_notify(file, top);
        self.load_promotion(file, top, name);
        self.load_resources(file, top);
        self.load_removed(file, top);
        self.load_moved(file, top);
        self.load_outputs(file, top);
        self.check_providers_used(file, top, &providers);
        providers
    }

    /// `environment:` must equal the file's name.
    fn check_environment_name(&mut self, file: usize, top: &MarkedMappingNode, name: &str) {
        let f = self.files[file].clone();
        match top.get_node("environment") {
            Some(node) => {
                if let Some(s) = yaml::expect_string(&f, node, "`environment`", &mut self.errors)
                    && s.as_str() != name
                {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "`environment: {}` does not match the file name {name}.yaml",
                            s.as_str()
                        ),
                        "must equal the file name",
                    );
                }
            }
            None => self.err(
                file,
                top.span(),
                "missing key `environment`",
                "in this file",
            ),
        }
    }

    /// `budget: { monthly, max_increase }`, in US dollars.
    fn load_budget(&mut self, file: usize, top: &MarkedMappingNode) {
        let f = self.files[file].clone();
        if let Some(node) = top.get_node("budget")
            && let Some(map) = yaml::expect_mapping(&f, node, "`budget`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, map, BUDGET_KEYS, "`budget`", &mut self.errors);
            for key in BUDGET_KEYS {
                let Some(Node::Scalar(v)) = map.get_node(key) else {
                    continue;
                };
                match v.as_str().parse::<f64>() {
                    Ok(n) if n >= 0.0 => {
                        if *key == "monthly" {
                            self.budget.monthly = Some(n);
                        } else {
                            self.budget.max_increase = Some(n);
                        }
                    }
                    _ => self.err(
                        file,
                        v.span(),
                        format!(
                            "`budget.{key}` is a number of US dollars, found `{}`",
                            v.as_str()
                        ),
                        "not an amount",
                    ),
                }
            }
        }
    }

    /// `notify: { webhook }`: an http(s) URL, literal or from a variable.
    fn load_notify(&mut self, file: usize, top: &MarkedMappingNode) {
        let f = self.files[file].clone();
        if let Some(node) = top.get_node("notify")
            && let Some(map) = yaml::expect_mapping(&f, node, "`notify`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, map, NOTIFY_KEYS, "`notify`", &mut self.errors);
            if let Some(node) = map.get_node("webhook")
                && let Some(url) =
                    yaml::expect_string(&f, node, "`notify.webhook`", &mut self.errors)
            {
                let text = url.as_str();
                let variable = text
                    .strip_prefix("${var.")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .filter(|name| !name.contains(['{', '}', '$']));
                let (value, shown) = match variable {
                    Some(name) => match self.vars.get(name) {
                        Some(var) => (
                            var.value.reveal().as_str().unwrap_or("").to_string(),
                            format!("the value of `${{var.{name}}}`"),
                        ),
                        None => {
                            self.err(
                                file,
                                url.span(),
                                format!("`notify.webhook`: no variable `{name}`"),
                                "dangling reference",
                            );
                            (String::new(), String::new())
                        }
                    },
                    None => (text.to_string(), format!("`{text}`")),
                };
                let unset = variable.is_some_and(|n| self.unset_secrets.iter().any(|u| u == n));
                if value.starts_with("http://") || value.starts_with("https://") {
                    self.notify_webhook = Some(value);
                } else if unset {
                    // `validate` without secrets: the URL is not known, and not checked.
                } else if !shown.is_empty() {
                    self.err(
                        file,
                        url.span(),
                        format!("`notify.webhook` must be an http(s) URL, found {shown}"),
                        "not a URL",
                    );
                }
            }
        }
    }

    /// `promotion: { from, state_url }`: another environment images must pass first.
    fn load_promotion(&mut self, file: usize, top: &MarkedMappingNode, name: &str) {
        let f = self.files[file].clone();
        if let Some(node) = top.get_node("promotion")
            && let Some(map) = yaml::expect_mapping(&f, node, "`promotion`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, map, PROMOTION_KEYS, "`promotion`", &mut self.errors);
            let text = |key: &str, errors: &mut Vec<ConfigError>| {
                map.get_node(key)
                    .and_then(|n| yaml::expect_string(&f, n, &format!("`promotion.{key}`"), errors))
                    .map(|s| (s.as_str().to_string(), *s.span()))
            };
            let from = text("from", &mut self.errors);
            let state_url = text("state_url", &mut self.errors).map(|(s, _)| s);
            match from {
                Some((from, span)) if from == name => self.err(
                    file,
                    &span,
                    format!("`promotion.from: {from}` names this environment"),
                    "promote from another environment",
                ),
                Some((from, span))
                    if crate::model::Address::parse(&from).is_none() || from.contains('.') =>
                {
                    self.err(
                        file,
                        &span,
                        format!("`promotion.from: {from}` is not an environment name"),
                        "e.g. staging",
                    )
                }
                Some((from, _)) => {
                    self.promotion = Some(crate::config::Promotion { from, state_url })
                }
                None => self.err(
                    file,
                    map.span(),
                    "`promotion` needs `from`, the environment images must pass first",
                    "add `from: staging`",
                ),
            }
        }
    }

    /// `removed: [{ from: ADDR, destroy: false }]`: a resource taken out of the files that apply
    /// forgets (removes from state, the cloud's resource kept) instead of deleting; `destroy`
    /// defaults to true, as Terraform's. `from` must no longer be declared.
    fn load_removed(&mut self, file: usize, top: &MarkedMappingNode) {
        let f = self.files[file].clone();
        let Some(node) = top.get_node("removed") else {
            return;
        };
        let Some(list) = node.as_sequence() else {
            self.err(
                file,
                node.span(),
                format!("`removed` is a list, found {}", yaml::shape(node)),
                "write `removed: [{ from: ADDR, destroy: false }]`",
            );
            return;
        };
        for entry in list.iter() {
            let Some(map) = yaml::expect_mapping(&f, entry, "a `removed` entry", &mut self.errors)
            else {
                continue;
            };
            yaml::reject_unknown_keys(&f, map, REMOVED_KEYS, "a `removed` entry", &mut self.errors);
            let Some(from) = map
                .get_node("from")
                .and_then(|n| yaml::expect_string(&f, n, "`removed.from`", &mut self.errors))
            else {
                if map.get_node("from").is_none() {
                    self.err(
                        file,
                        map.span(),
                        "a `removed` entry needs `from`, the address state holds",
                        "add `from: ADDR`",
                    );
                }
                continue;
            };
            let span = *from.span();
            let Some(address) = Address::parse(from.as_str()) else {
                self.err(
                    file,
                    &span,
                    format!("`{}` is not an address", from.as_str()),
                    "KEY or INSTANCE.KEY",
                );
                continue;
            };
            let destroy = match map.get_node("destroy") {
                None => true,
                Some(n) => match n.as_scalar().and_then(|s| s.as_bool()) {
                    Some(b) => b,
                    None => {
                        self.err(
                            file,
                            n.span(),
                            "`removed.destroy` is true or false",
                            "false keeps it in the cloud",
                        );
                        continue;
                    }
                },
            };
            if let Some(at) = self.declared_at(&address) {
                self.err(
                    file,
                    &span,
                    format!("`{address}` is still declared in the files{at}: a `removed` entry is for a resource taken out of them"),
                    "remove the resource, or this entry",
                );
                continue;
            }
            self.removed.push((
                crate::config::Removed {
                    from: address,
                    destroy,
                },
                file,
                span,
            ));
        }
    }

    /// `outputs: { NAME: { value, description, sensitive } }`: values over the root's
    /// resources, module outputs and variables. A value that holds a secret must be marked
    /// `sensitive: true` (Terraform's rule), so no secret is printed by accident.
    fn load_outputs(&mut self, file: usize, top: &MarkedMappingNode) {
        let f = self.files[file].clone();
        let Some(node) = top.get_node("outputs") else {
            return;
        };
        let Some(map) = yaml::expect_mapping(&f, node, "`outputs`", &mut self.errors) else {
            return;
        };
        let scope = self.root_scope();
        for (name, spec) in map.iter() {
            let what = format!("output `{}`", name.as_str());
            let plain = name
                .as_str()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && name
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain {
                self.err(
                    file,
                    name.span(),
                    format!(
                        "output name {} is not a name: letters, digits and `_`, starting with a letter",
                        crate::model::grammar::shown(name.as_str())
                    ),
                    "not a name",
                );
                continue;
            }
            let Some(spec) = yaml::expect_mapping(&f, spec, &what, &mut self.errors) else {
                continue;
            };
            yaml::reject_unknown_keys(&f, spec, OUTPUT_KEYS, &what, &mut self.errors);
            let Some(value) = spec.get_node("value") else {
                self.err(
                    file,
                    name.span(),
                    format!("{what} has no `value`"),
                    "add `value: \"${KEY.ATTRIBUTE}\"`",
                );
                continue;
            };
            let (expr, _) = self.convert(&scope, value, &ANY);
            let description = spec
                .get_node("description")
                .and_then(|n| yaml::expect_string(&f, n, "`description`", &mut self.errors))
                .map(|s| s.as_str().to_string());
            let sensitive = match spec.get_node("sensitive") {
                None => false,
                Some(n) => match n.as_scalar().and_then(|s| s.as_bool()) {
                    Some(b) => b,
                    None => {
                        self.err(
                            file,
                            n.span(),
                            format!("`{what}.sensitive` is true or false"),
                            "not a boolean",
                        );
                        false
                    }
                },
            };
            if !sensitive && self.holds_secret(&expr) {
                self.err(
                    file,
                    value.span(),
                    format!("{what} holds a sensitive value: mark it `sensitive: true` (it is then printed only with `converge output --show-sensitive`)"),
                    "sensitive",
                );
                continue;
            }
            self.outputs.insert(
                name.as_str().to_string(),
                crate::config::OutputDecl {
                    value: expr,
                    description,
                    sensitive,
                    location: crate::config::Location::of(&f, name.span()),
                },
            );
        }
    }

    /// Whether `expr` holds a secret: a sensitive literal (a sensitive variable's value), or a
    /// reference to a sensitive property of a resource.
    fn holds_secret(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Literal(v) => v.contains_sensitive(),
            Expr::Ref(r) => self
                .resources
                .get(&r.address)
                .and_then(|d| d.kind.prop(&r.attr))
                .is_some_and(|p| p.sensitive),
            Expr::Template(parts) | Expr::List(parts) => parts.iter().any(|p| self.holds_secret(p)),
            Expr::Map(m) => m.values().any(|p| self.holds_secret(p)),
        }
    }

    /// The `from` and `to` of each entry of a `moved:` list, or nothing (errors reported).
    fn moved_entries(
        &mut self,
        file: usize,
        node: &Node,
    ) -> Vec<(MarkedScalarNode, MarkedScalarNode)> {
        let f = self.files[file].clone();
        let Some(list) = node.as_sequence() else {
            self.err(
                file,
                node.span(),
                format!("`moved` is a list, found {}", yaml::shape(node)),
                "write `moved: [{ from: OLD, to: NEW }]`",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in list.iter() {
            let Some(map) = yaml::expect_mapping(&f, entry, "a `moved` entry", &mut self.errors)
            else {
                continue;
            };
            yaml::reject_unknown_keys(&f, map, MOVED_KEYS, "a `moved` entry", &mut self.errors);
            let mut side = |key: &str| match map.get_node(key) {
                Some(n) => {
                    yaml::expect_string(&f, n, &format!("`moved.{key}`"), &mut self.errors).cloned()
                }
                None => {
                    self.errors.push(ConfigError::at(
                        &f,
                        map.span(),
                        format!("a `moved` entry needs `{key}`"),
                        format!("add `{key}: ADDR`"),
                    ));
                    None
                }
            };
            let (from, to) = (side("from"), side("to"));
            if let (Some(from), Some(to)) = (from, to) {
                out.push((from, to));
            }
        }
        out
    }

    /// `moved: [{ from, to }]` of the environment file: `from` and `to` are both resource
    /// addresses or both module instances (`module.NAME`), differ, and `from` is no longer
    /// declared (Terraform's rules). Module files' entries are expanded per instance here too.
    fn load_moved(&mut self, file: usize, top: &MarkedMappingNode) {
        let entries = match top.get_node("moved") {
            Some(node) => self.moved_entries(file, node),
            None => Vec::new(),
        };
        for (from_node, to_node) in entries {
            let span = *from_node.span();
            let parse = |node: &MarkedScalarNode| {
                crate::config::MoveEnd::parse(node.as_str()).ok_or_else(|| {
                    (
                        *node.span(),
                        format!(
                            "{} is not an address: write KEY, INSTANCE.KEY or module.INSTANCE",
                            crate::model::grammar::shown(node.as_str())
                        ),
                    )
                })
            };
            let (from, to) = match (parse(&from_node), parse(&to_node)) {
                (Ok(from), Ok(to)) => (from, to),
                (Err((at, message)), _) | (_, Err((at, message))) => {
                    self.err(file, &at, message, "not an address");
                    continue;
                }
            };
            if let Some(problem) = self.moved_problem(&from, &to) {
                self.err(file, &span, problem, "in this `moved` entry");
                continue;
            }
            self.moved.push(crate::config::Moved {
                from,
                to,
                file,
                span,
            });
        }
        for (instance, decl) in self.instances.clone() {
            let Some(Some(def)) = self.module_defs.get(&decl.source) else {
                continue;
            };
            for (from, to, span) in def.moved.clone() {
                self.moved.push(crate::config::Moved {
                    from: crate::config::MoveEnd::Resource(Address::in_module(&instance, &from)),
                    to: crate::config::MoveEnd::Resource(Address::in_module(&instance, &to)),
                    file: def.file,
                    span,
                });
            }
        }
    }

    /// ` (at FILE:LINE:COLUMN)` where `address` is declared (empty when its place is not
    /// known); `None` when it is not declared.
    fn declared_at(&self, address: &Address) -> Option<String> {
        let declared = self.resources.get(address)?;
        Some(
            declared
                .location
                .as_ref()
                .map(|l| format!(" (at {}:{}:{})", l.file, l.line, l.column))
                .unwrap_or_default(),
        )
    }

    /// What is wrong with moving `from` to `to`, by Terraform's rules.
    fn moved_problem(
        &self,
        from: &crate::config::MoveEnd,
        to: &crate::config::MoveEnd,
    ) -> Option<String> {
        use crate::config::MoveEnd;
        if from == to {
            return Some(format!("`moved` from {from} to itself moves nothing"));
        }
        match (from, to) {
            (MoveEnd::Resource(a), MoveEnd::Resource(_)) => {
                let at = self.declared_at(a)?;
                Some(format!(
                    "`{a}` is still declared in the files{at}: a `moved` entry's `from` is the old address, no longer declared"
                ))
            }
            (MoveEnd::Module(m), MoveEnd::Module(_)) => self.instances.contains_key(m).then(|| {
                format!(
                    "module instance `{m}` is still declared: a `moved` entry's `from` is the old name, no longer declared"
                )
            }),
            _ => Some(format!(
                "`moved` from {from} to {to}: a resource moves to a resource address, a module instance to a module instance"
            )),
        }
    }

    /// `resources:` and `modules:`: declared, then resolved (module instances after the root
    /// resources they may reference).
    fn load_resources(&mut self, file: usize, top: &MarkedMappingNode) {
        let root_decls = match top.get_node("resources") {
            Some(node) => self.resource_decls(file, node),
            None => Vec::new(),
        };
        if let Some(node) = top.get_node("modules") {
            self.instance_decls(file, node);
        }
        for (instance, decl) in self.instances.clone() {
            if root_decls.iter().any(|d| d.key == instance) {
                self.err(
                    file,
                    &decl.key_span,
                    format!("module instance `{instance}` has the name of a root resource"),
                    "names must be unique",
                );
            }
        }
        self.root_keys = Arc::new(root_decls.iter().map(|d| (d.key.clone(), d.kind)).collect());
        let scope = self.root_scope();
        for decl in &root_decls {
            self.resolve_resource(&scope, decl);
        }
        for instance in self.instances.keys().cloned().collect::<Vec<_>>() {
            self.resolve_instance(&instance);
        }
    }

    /// Resources of a cloud need that cloud's provider block.
    fn check_providers_used(
        &mut self,
        file: usize,
        top: &MarkedMappingNode,
        providers: &Providers,
    ) {
        if providers.aws.is_none() && self.resources.values().any(|r| r.kind.provider() == "aws") {
            self.err(
                file,
                top.span(),
                "resources of kind aws.* need `providers: { aws: { region: ... } }`",
                "in this file",
            );
        }
        if providers.azure.is_none()
            && self
                .resources
                .values()
                .any(|r| r.kind.provider() == "azure")
        {
            self.err(
                file,
                top.span(),
                "resources of kind azure.* need `providers: { azure: { subscription_id: ... } }`",
                "in this file",
            );
        }
    }

    pub(super) fn load_providers(&mut self, file: usize, node: Option<&Node>) -> Providers {
        let mut providers = Providers::default();
        let Some(node) = node else { return providers };
        let f = self.files[file].clone();
        let Some(map) = yaml::expect_mapping(&f, node, "`providers`", &mut self.errors) else {
            return providers;
        };
        yaml::reject_unknown_keys(&f, map, PROVIDER_KEYS, "`providers`", &mut self.errors);
        if let Some(aws) = map.get_node("aws")
            && let Some(aws) = yaml::expect_mapping(&f, aws, "`providers.aws`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, aws, AWS_KEYS, "`providers.aws`", &mut self.errors);
            match aws.get_node("region") {
                Some(r) => {
                    if let Some(r) = yaml::expect_string(&f, r, "`region`", &mut self.errors) {
                        providers.aws = Some(AwsSettings {
                            region: r.as_str().to_string(),
                        });
                    }
                }
                None => self.err(
                    file,
                    aws.span(),
                    "missing key `region` in `providers.aws`",
                    "here",
                ),
            }
        }
        if let Some(azure) = map.get_node("azure")
            && let Some(azure) =
                yaml::expect_mapping(&f, azure, "`providers.azure`", &mut self.errors)
        {
            yaml::reject_unknown_keys(&f, azure, AZURE_KEYS, "`providers.azure`", &mut self.errors);
            let tenant_id = azure
                .get_node("tenant_id")
                .and_then(|t| yaml::expect_string(&f, t, "`tenant_id`", &mut self.errors))
                .map(|t| t.as_str().to_string());
            let cloud = azure
                .get_node("cloud")
                .and_then(|c| yaml::expect_string(&f, c, "`cloud`", &mut self.errors))
                .filter(|c| {
                    let ok = ["public", "china", "usgovernment"].contains(&c.as_str());
                    if !ok {
                        self.err(
                            file,
                            c.span(),
                            "`cloud` is public, china or usgovernment",
                            "unknown cloud",
                        );
                    }
                    ok
                })
                .map(|c| c.as_str().to_string());
            let mut endpoint = |key: &str| -> Option<String> {
                let endpoints = azure.get_node("endpoints")?;
                let map = yaml::expect_mapping(
                    &f,
                    endpoints,
                    "`providers.azure.endpoints`",
                    &mut self.errors,
                )?;
                yaml::reject_unknown_keys(
                    &f,
                    map,
                    AZURE_ENDPOINT_KEYS,
                    "`providers.azure.endpoints`",
                    &mut self.errors,
                );
                let node = map.get_node(key)?;
                yaml::expect_string(&f, node, key, &mut self.errors).map(|v| v.as_str().to_string())
            };
            let resource_manager_endpoint = endpoint("resource_manager");
            let graph_endpoint = endpoint("graph");
            match azure.get_node("subscription_id") {
                Some(s) => {
                    if let Some(s) =
                        yaml::expect_string(&f, s, "`subscription_id`", &mut self.errors)
                    {
                        providers.azure = Some(AzureSettings {
                            subscription_id: s.as_str().to_string(),
                            tenant_id,
                            cloud,
                            resource_manager_endpoint,
                            graph_endpoint,
                        });
                    }
                }
                None => self.err(
                    file,
                    azure.span(),
                    "missing key `subscription_id` in `providers.azure`",
                    "here",
                ),
            }
        }
        providers
    }

    pub(super) fn load_variables(
        &mut self,
        file: usize,
        node: Option<&Node>,
        overrides: &VarOverrides,
    ) {
        let f = self.files[file].clone();
        if let Some(node) = node
            && let Some(map) = yaml::expect_mapping(&f, node, "`variables`", &mut self.errors)
        {
            for (key, value) in map.iter() {
                let spec = value.as_mapping().filter(|m| {
                    m.keys().all(|k| VAR_SPEC_KEYS.contains(&k.as_str()))
                        && (m.get_node("default").is_some() || m.get_node("sensitive").is_some())
                });
                let origin = match spec {
                    Some(m) => m.get_node("default").cloned(),
                    None => Some(value.clone()),
                };
                let (default, sensitive) = match spec {
                    Some(m) => {
                        let sensitive = match m.get_node("sensitive") {
                            Some(n) => self
                                .literal(file, n, &Type::Bool)
                                .as_bool()
                                .unwrap_or(false),
                            None => false,
                        };
                        (
                            m.get_node("default").map(|n| self.literal(file, n, &ANY)),
                            sensitive,
                        )
                    }
                    None => (Some(self.literal(file, value, &ANY)), false),
                };
                let given = overrides.cli.get(key.as_str()).or_else(|| {
                    overrides
                        .env
                        .get(key.as_str())
                        .or_else(|| overrides.env.get(&key.as_str().to_uppercase()))
                });
                let origin = origin.filter(|_| given.is_none()).map(|n| (file, n));
                let value = match (given, default) {
                    (Some(text), default) => parse_override(text, default.as_ref()),
                    (None, Some(default)) => default,
                    (None, None) if sensitive && overrides.without_secrets => {
                        self.unset_secrets.push(key.as_str().to_string());
                        Value::Unknown
                    }
                    (None, None) => {
                        self.err(
                            file,
                            key.span(),
                            format!(
                                "variable `{}` has no default and no value was given",
                                key.as_str()
                            ),
                            "needs a value",
                        );
                        if let Some(e) = self.errors.pop() {
                            self.errors.push(e.with_help(format!(
                                "pass --var {0}=VALUE or set CONVERGE_VAR_{0}",
                                key.as_str()
                            )));
                        }
                        Value::Null
                    }
                };
                let value = if sensitive {
                    value.into_sensitive()
                } else {
                    value
                };
                self.vars
                    .insert(key.as_str().to_string(), Var { value, origin });
            }
        }
        for key in overrides.cli.keys() {
            if !self.vars.contains_key(key) {
                self.errors.push(ConfigError::general(format!(
                    "--var {key}=...: environment file {} declares no variable `{key}`",
                    f.name
                )));
            }
        }
    }

    /// A YAML value with no references allowed (variables, defaults).
    pub(super) fn literal(&mut self, file: usize, node: &Node, expected: &Type) -> Value {
        let f = self.files[file].clone();
        match node {
            Node::Scalar(s) => {
                if s.as_str().contains("${") {
                    self.err(
                        file,
                        s.span(),
                        "references are not allowed here",
                        "a plain value is needed",
                    );
                    return Value::Null;
                }
                let v = scalar_value(s, expected);
                if !accepts(expected, tag_of_value(&v)) {
                    self.err(
                        file,
                        s.span(),
                        format!(
                            "expected {}, found {}",
                            expected.describe(),
                            tag_of_value(&v).describe()
                        ),
                        "wrong type",
                    );
                }
                v
            }
            Node::Sequence(items) => {
                Value::List(items.iter().map(|n| self.literal(file, n, &ANY)).collect())
            }
            Node::Mapping(m) => {
                let _ = &f;
                Value::Map(
                    m.iter()
                        .map(|(k, v)| (k.as_str().to_string(), self.literal(file, v, &ANY)))
                        .collect(),
                )
            }
        }
    }

    pub(super) fn resource_decls(&mut self, file: usize, node: &Node) -> Vec<ResourceDecl> {
        let f = self.files[file].clone();
        let Some(map) = yaml::expect_mapping(&f, node, "`resources`", &mut self.errors) else {
            return Vec::new();
        };
        let mut decls = Vec::new();
        for (key, body) in map.iter() {
            if Address::parse(key.as_str()).is_none() || key.as_str().contains('.') {
                self.err(
                    file,
                    key.span(),
                    format!("`{}` is not a valid resource key", key.as_str()),
                    "use letters, digits, `_` and `-`",
                );
                continue;
            }
            let Some(body) = yaml::expect_mapping(
                &f,
                body,
                &format!("resource `{}`", key.as_str()),
                &mut self.errors,
            ) else {
                continue;
            };
            yaml::reject_unknown_keys(
                &f,
                body,
                RESOURCE_KEYS,
                &format!("resource `{}`", key.as_str()),
                &mut self.errors,
            );
            let Some(type_node) = body.get_node("type") else {
                self.err(
                    file,
                    key.span(),
                    format!("resource `{}` has no `type`", key.as_str()),
                    "missing `type`",
                );
                continue;
            };
            let Some(type_name) = yaml::expect_string(&f, type_node, "`type`", &mut self.errors)
            else {
                continue;
            };
            let Some(kind) = kinds::lookup(type_name.as_str()) else {
                let names: Vec<&str> = kinds::schemas().map(|k| k.kind).collect();
                let e = yaml::unknown_key(&f, type_name, &names, "resource kinds");
                self.errors.push(e);
                continue;
            };
            decls.push(ResourceDecl {
                key: key.as_str().to_string(),
                key_span: *key.span(),
                kind,
                properties: body.get_node("properties").cloned(),
                depends_on: body.get_node("depends_on").cloned(),
                usage: body.get_node("usage").cloned(),
            });
        }
        decls
    }

    pub(super) fn instance_decls(&mut self, file: usize, node: &Node) {
        let f = self.files[file].clone();
        let Some(map) = yaml::expect_mapping(&f, node, "`modules`", &mut self.errors) else {
            return;
        };
        for (key, body) in map.iter() {
            let Some(body) = yaml::expect_mapping(
                &f,
                body,
                &format!("module `{}`", key.as_str()),
                &mut self.errors,
            ) else {
                continue;
            };
            yaml::reject_unknown_keys(
                &f,
                body,
                INSTANCE_KEYS,
                &format!("module `{}`", key.as_str()),
                &mut self.errors,
            );
            let Some(source) = body.get_node("source") else {
                self.err(
                    file,
                    key.span(),
                    format!("module `{}` has no `source`", key.as_str()),
                    "missing `source`",
                );
                continue;
            };
            let Some(source) = yaml::expect_string(&f, source, "`source`", &mut self.errors) else {
                continue;
            };
            if !self.module_defs.contains_key(source.as_str()) {
                let def = self.load_module_def(file, source);
                self.module_defs.insert(source.as_str().to_string(), def);
            }
            self.instances.insert(
                key.as_str().to_string(),
                InstanceDecl {
                    source: source.as_str().to_string(),
                    key_span: *key.span(),
                    inputs: body.get_node("inputs").cloned(),
                },
            );
        }
    }

    pub(super) fn load_module_def(
        &mut self,
        from: usize,
        source: &MarkedScalarNode,
    ) -> Option<ModuleDef> {
        let name = source.as_str();
        let plain = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !name.split('/').all(plain) {
            self.err(
                from,
                source.span(),
                format!(
                    "module source {} is not a module name: write NAME (or DIR/NAME) of letters, digits, `-`, `_` and `.`, for modules/NAME/module.yaml inside the project",
                    crate::model::grammar::shown(name)
                ),
                "not a module name",
            );
            return None;
        }
        let rel = format!("modules/{name}/module.yaml");
        if !self.root.join(&rel).exists() {
            self.err(
                from,
                source.span(),
                format!("module source `{name}` not found: no {rel}"),
                "unknown module",
            );
            return None;
        }
        let file = self.read_file(&rel)?;
        let f = self.files[file].clone();
        let doc = match yaml::parse(&f, file) {
            Ok(d) => d,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let top = yaml::expect_mapping(&f, &doc, "a module file", &mut self.errors)?;
        yaml::reject_unknown_keys(&f, top, MODULE_KEYS, "the module file", &mut self.errors);
        let mut inputs = BTreeMap::new();
        if let Some(node) = top.get_node("inputs")
            && let Some(map) = yaml::expect_mapping(&f, node, "`inputs`", &mut self.errors)
        {
            for (key, spec) in map.iter() {
                let Some(spec) = yaml::expect_mapping(
                    &f,
                    spec,
                    &format!("input `{}`", key.as_str()),
                    &mut self.errors,
                ) else {
                    continue;
                };
                yaml::reject_unknown_keys(
                    &f,
                    spec,
                    INPUT_SPEC_KEYS,
                    &format!("input `{}`", key.as_str()),
                    &mut self.errors,
                );
                let ty = match spec.get_scalar("type").map(|s| s.as_str()) {
                    None | Some("any") => Type::Any,
                    Some("string") => Type::String,
                    Some("number") => Type::Number,
                    Some("bool") => Type::Bool,
                    Some("list") => Type::List(&ANY),
                    Some("map") => Type::Map(&ANY),
                    Some(other) => {
                        let span = *spec
                            .get_scalar("type")
                            .map(|s| s.span())
                            .unwrap_or(key.span());
                        self.err(
                            file,
                            &span,
                            format!("unknown input type `{other}`"),
                            "one of string, number, bool, list, map, any",
                        );
                        Type::Any
                    }
                };
                let default = spec.get_node("default").map(|n| self.literal(file, n, &ty));
                let sensitive = spec
                    .get_node("sensitive")
                    .map(|n| self.literal(file, n, &Type::Bool));
                inputs.insert(
                    key.as_str().to_string(),
                    InputSpec {
                        ty,
                        default,
                        sensitive: sensitive.and_then(|v| v.as_bool()).unwrap_or(false),
                    },
                );
            }
        }
        let resources = match top.get_node("resources") {
            Some(node) => self.resource_decls(file, node),
            None => Vec::new(),
        };
        let mut outputs = Vec::new();
        if let Some(node) = top.get_node("outputs")
            && let Some(map) = yaml::expect_mapping(&f, node, "`outputs`", &mut self.errors)
        {
            outputs = map
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect();
        }
        let moved = self.module_moved(file, top, &resources);
        Some(ModuleDef {
            file,
            inputs,
            resources,
            outputs,
            moved,
        })
    }
}

impl Loader<'_> {
    /// A module file's `moved: [{ from: OLD_KEY, to: NEW_KEY }]`: keys of the module's own
    /// resources (each instance moves its own), `from` no longer declared in the module.
    fn module_moved(
        &mut self,
        file: usize,
        top: &MarkedMappingNode,
        resources: &[ResourceDecl],
    ) -> Vec<(String, String, Span)> {
        let Some(node) = top.get_node("moved") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (from, to) in self.moved_entries(file, node) {
            let key = |n: &MarkedScalarNode| {
                let text = n.as_str();
                Address::parse(text)
                    .filter(|_| !text.contains('.'))
                    .map(|_| text.to_string())
            };
            let (Some(from_key), Some(to_key)) = (key(&from), key(&to)) else {
                let bad = if key(&from).is_none() { &from } else { &to };
                self.err(
                    file,
                    bad.span(),
                    format!(
                        "{} is not a resource key of this module: a module's `moved` entries rename its own resources (KEY to KEY); rename an instance with `module.OLD` to `module.NEW` in the environment file",
                        crate::model::grammar::shown(bad.as_str())
                    ),
                    "not a key",
                );
                continue;
            };
            if from_key == to_key {
                self.err(
                    file,
                    from.span(),
                    format!("`moved` from {from_key} to itself moves nothing"),
                    "in this `moved` entry",
                );
            } else if resources.iter().any(|d| d.key == from_key) {
                self.err(
                    file,
                    from.span(),
                    format!(
                        "`{from_key}` is still declared in this module: a `moved` entry's `from` is the old key, no longer declared"
                    ),
                    "in this `moved` entry",
                );
            } else {
                out.push((from_key, to_key, *from.span()));
            }
        }
        out
    }
}

/// A plain YAML scalar as a value: unquoted scalars are typed (`true`, `3`, `null`), quoted ones
/// are strings; where a string is expected, plain numbers and booleans are taken as their text.
pub(super) fn scalar_value(s: &MarkedScalarNode, expected: &Type) -> Value {
    let text = s.as_str();
    if !s.may_coerce() {
        return Value::str(text);
    }
    if matches!(text, "" | "~" | "null") {
        return Value::Null;
    }
    let typed = if let Some(b) = s.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = text.parse::<i64>() {
        Value::int(i)
    } else if let Some(n) = text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Value::Number(n)
    } else {
        return Value::str(text);
    };
    match expected {
        Type::String | Type::Text(_) | Type::Enum(_) | Type::Duration => Value::str(text),
        _ => typed,
    }
}

/// A `--var` or `CONVERGE_VAR_*` text, typed like the variable's default.
fn parse_override(text: &str, default: Option<&Value>) -> Value {
    match default.map(Value::reveal) {
        Some(Value::Number(_)) => text
            .parse::<i64>()
            .map(Value::int)
            .ok()
            .or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            })
            .unwrap_or_else(|| Value::str(text)),
        Some(Value::Bool(_)) => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::str(text),
        },
        _ => Value::str(text),
    }
}
