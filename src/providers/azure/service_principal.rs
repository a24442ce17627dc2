//! `azure.service_principal`: a Microsoft Graph application, its service principal, its
//! federated identity credentials (secretless sign-in, e.g. GitHub's OIDC), and its role
//! assignments at ARM scopes. Graph's `appId` (the client id) and object `id`s are kept apart;
//! role assignments are named by a UUID v5 over (scope, role definition, principal), so a
//! repeated apply finds the one it made; roles are given by name and resolved at the scope.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value as Json, json};

use super::arm::Arm;
use crate::model::Value;
use crate::providers::{Applied, Live, ProviderError};
use async_trait::async_trait;

use super::AzureProvider;
use crate::kinds::{Handler, Kind};
use crate::model::schema::{
    Default, KindSchema, Output, PriceRule, Prop, STRING, STRINGS, Type, no_rules,
};
use crate::providers::ReadItem;
use crate::providers::kind::{self, ReadResult as KindRead};
use crate::providers::{CreateRequest, DeleteRequest, ImportRequest, UpdateRequest};
use futures::{StreamExt, stream};

/// The registration of `azure.service_principal`.
pub const KIND: Kind = Kind {
    schema: &SCHEMA,
    handler: Handler::Azure(&ServicePrincipal),
    deploy: None,
};

const FEDERATED_CREDENTIAL: &[Prop] = &[
    Prop::new("name", STRING, "Credential name.").required(),
    Prop::new(
        "issuer",
        STRING,
        "Token issuer, e.g. https://token.actions.githubusercontent.com.",
    )
    .required(),
    Prop::new(
        "subject",
        STRING,
        "Token subject, e.g. repo:org/repo:ref:refs/heads/main.",
    )
    .required(),
    Prop::new("audiences", STRINGS, "Accepted audiences.").default(Default::EmptyList),
];

const FEDERATED_CREDENTIAL_TYPE: Type = Type::Object(FEDERATED_CREDENTIAL);

pub(super) const ROLE_ASSIGNMENT: &[Prop] = &[
    Prop::new("role", STRING, "Role name, e.g. AcrPush.").required(),
    Prop::new("scope", STRING, "ARM scope (a resource id).").required(),
];

/// A `{ role, scope }` grant, as service principals and VM identities take them.
pub(super) const ROLE_ASSIGNMENT_TYPE: Type = Type::Object(ROLE_ASSIGNMENT);

/// `azure.service_principal`: an application, its service principal, credentials and roles.
pub const SCHEMA: KindSchema = KindSchema {
    kind: "azure.service_principal",
    doc: "A Microsoft Entra application with its service principal, federated credentials (no secrets) and role assignments.",
    props: &[
        Prop::new("display_name", STRING, "Display name.").required(),
        Prop::new(
            "federated_credentials",
            Type::List(&FEDERATED_CREDENTIAL_TYPE),
            "Federated identity credentials (e.g. GitHub Actions OIDC).",
        )
        .unordered()
        .default(Default::EmptyList),
        Prop::new(
            "role_assignments",
            Type::List(&ROLE_ASSIGNMENT_TYPE),
            "Roles granted to the service principal at ARM scopes.",
        )
        .unordered()
        .default(Default::EmptyList),
    ],
    outputs: &[
        Output {
            name: "client_id",
            ty: STRING,
        },
        Output {
            name: "object_id",
            ty: STRING,
        },
        Output {
            name: "application_object_id",
            ty: STRING,
        },
    ],
    price: PriceRule::Free,
    import_id: "application object id",
    rules: no_rules,
    rollout_summary: None,
};

/// The handler of `azure.service_principal`.
struct ServicePrincipal;

#[async_trait]
impl kind::Handler<AzureProvider> for ServicePrincipal {
    async fn read(&self, azure: &AzureProvider, items: Vec<ReadItem>) -> Vec<KindRead> {
        stream::iter(items)
            .map(|item| async move {
                let live = match (azure.graph(), azure.arm()) {
                    _ if item.remote_id.is_empty() => Ok(None),
                    (Ok(graph), Ok(arm)) => read(graph, arm, &item.remote_id, &item.prior).await,
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
                (item.address, live)
            })
            .buffer_unordered(azure.parallelism)
            .collect()
            .await
    }

    fn planned_id(&self, _: &AzureProvider, r: &CreateRequest) -> String {
        // Graph assigns the object id: an interrupted create cannot be found again.
        let _ = r;
        String::new()
    }

    async fn create(
        &self,
        azure: &AzureProvider,
        r: CreateRequest,
    ) -> Result<Applied, ProviderError> {
        create(azure.graph()?, azure.arm()?, &r.properties).await
    }

    async fn update(
        &self,
        azure: &AzureProvider,
        r: UpdateRequest,
    ) -> Result<Applied, ProviderError> {
        update(
            azure.graph()?,
            azure.arm()?,
            &r.remote_id,
            &r.prior,
            &r.prior_outputs,
            &r.properties,
        )
        .await
    }

    async fn delete(&self, azure: &AzureProvider, r: DeleteRequest) -> Result<(), ProviderError> {
        delete(azure.graph()?, azure.arm()?, &r.remote_id, &r.prior).await
    }

    async fn import(
        &self,
        azure: &AzureProvider,
        r: ImportRequest,
    ) -> Result<Option<(Applied, Live)>, ProviderError> {
        // By application object id; role assignments are read once the files name them.
        let live = read(azure.graph()?, azure.arm()?, &r.id, &Value::Null).await?;
        Ok(live.map(|l| {
            (
                Applied {
                    remote_id: r.id.clone(),
                    outputs: l.outputs.clone(),
                },
                l,
            )
        }))
    }
}

/// api-version of Microsoft.Authorization.
pub const AUTHORIZATION_API: &str = "2022-04-01";

/// A role assignment: role name and scope.
type Grant = (String, String);

fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).reveal().as_str().unwrap_or("")
}

/// Desired role assignments of a principal's properties.
pub fn grants(p: &Value) -> BTreeSet<Grant> {
    p.get("role_assignments")
        .as_list()
        .unwrap_or_default()
        .iter()
        .map(|g| (text(g, "role").to_string(), text(g, "scope").to_string()))
        .collect()
}

/// The deterministic name of a role assignment.
pub fn assignment_name(scope: &str, role_definition: &str, principal: &str) -> String {
    let key = format!(
        "{}|{}|{}",
        scope.to_ascii_lowercase(),
        role_definition.to_ascii_lowercase(),
        principal
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

/// The role definition id of a role name at a scope.
async fn role_definition(arm: &Arm, scope: &str, role: &str) -> Result<String, ProviderError> {
    let found = arm
        .list(
            &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20'{role}'"),
            AUTHORIZATION_API,
        )
        .await?;
    found
        .first()
        .and_then(|d| d["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| ProviderError::Invalid(format!("no role named `{role}` at {scope}")))
}

/// Puts the assignments in `want` and deletes those in `drop` for `principal`.
pub async fn assign(
    arm: &Arm,
    principal: &str,
    principal_type: &str,
    want: &BTreeSet<Grant>,
    drop: &BTreeSet<Grant>,
) -> Result<(), ProviderError> {
    for (role, scope) in want {
        let definition = role_definition(arm, scope, role).await?;
        let name = assignment_name(scope, &definition, principal);
        arm.put_plain(
            Method::PUT,
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            AUTHORIZATION_API,
            &json!({"properties": {"roleDefinitionId": definition, "principalId": principal, "principalType": principal_type}}),
        )
        .await?;
    }
    for (role, scope) in drop {
        let definition = role_definition(arm, scope, role).await?;
        let name = assignment_name(scope, &definition, principal);
        arm.delete(
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            AUTHORIZATION_API,
        )
        .await?;
    }
    Ok(())
}

/// The assignments of `principal` at each of `scopes`, as (role name, scope).
pub async fn assigned(
    arm: &Arm,
    principal: &str,
    scopes: &BTreeSet<String>,
) -> Result<BTreeSet<Grant>, ProviderError> {
    let mut out = BTreeSet::new();
    for scope in scopes {
        let found = arm
            .list(
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'{principal}'"),
                AUTHORIZATION_API,
            )
            .await?;
        for a in found {
            let at = a["properties"]["scope"].as_str().unwrap_or(scope);
            if !at.eq_ignore_ascii_case(scope) || a["properties"]["principalId"] != principal {
                continue;
            }
            let definition = a["properties"]["roleDefinitionId"].as_str().unwrap_or("");
            if let Some(d) = arm.get(definition, AUTHORIZATION_API).await? {
                out.insert((
                    d["properties"]["roleName"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    scope.clone(),
                ));
            }
        }
    }
    Ok(out)
}

fn grants_value(grants: &BTreeSet<Grant>) -> Json {
    Json::Array(
        grants
            .iter()
            .map(|(r, s)| json!({"role": r, "scope": s}))
            .collect(),
    )
}

/// Creates the application, its service principal, credentials and assignments.
pub async fn create(graph: &Arm, arm: &Arm, p: &Value) -> Result<Applied, ProviderError> {
    let app = graph
        .post(
            "/v1.0/applications",
            &json!({"displayName": text(p, "display_name")}),
        )
        .await?;
    let app_id = app["appId"].as_str().unwrap_or("").to_string();
    let app_object = app["id"].as_str().unwrap_or("").to_string();
    let sp = graph
        .post("/v1.0/servicePrincipals", &json!({"appId": app_id}))
        .await?;
    let sp_object = sp["id"].as_str().unwrap_or("").to_string();
    for c in p.get("federated_credentials").as_list().unwrap_or_default() {
        graph
            .post(
                &format!("/v1.0/applications/{app_object}/federatedIdentityCredentials"),
                &credential_body(c),
            )
            .await?;
    }
    assign(
        arm,
        &sp_object,
        "ServicePrincipal",
        &grants(p),
        &BTreeSet::new(),
    )
    .await?;
    Ok(Applied {
        remote_id: app_object.clone(),
        outputs: outputs(&app_id, &sp_object, &app_object),
    })
}

fn credential_body(c: &Value) -> Json {
    json!({
        "name": text(c, "name"),
        "issuer": text(c, "issuer"),
        "subject": text(c, "subject"),
        "audiences": c.get("audiences").to_plain_json(),
    })
}

fn outputs(app_id: &str, sp: &str, app_object: &str) -> Value {
    Value::from_json(
        &json!({"client_id": app_id, "object_id": sp, "application_object_id": app_object}),
    )
}

async fn credentials(graph: &Arm, app_object: &str) -> Result<Vec<Json>, ProviderError> {
    graph
        .list(
            &format!("/v1.0/applications/{app_object}/federatedIdentityCredentials"),
            "",
        )
        .await
}

/// Reads the application (404: gone), its service principal, credentials and assignments at
/// the scopes last applied.
pub async fn read(
    graph: &Arm,
    arm: &Arm,
    app_object: &str,
    prior: &Value,
) -> Result<Option<Live>, ProviderError> {
    let Some(app) = graph
        .get(&format!("/v1.0/applications/{app_object}"), "")
        .await?
    else {
        return Ok(None);
    };
    let app_id = app["appId"].as_str().unwrap_or("");
    let sps = graph
        .list(
            &format!("/v1.0/servicePrincipals?$filter=appId%20eq%20'{app_id}'"),
            "",
        )
        .await?;
    let sp = sps
        .first()
        .and_then(|s| s["id"].as_str())
        .unwrap_or("")
        .to_string();
    let creds: Vec<Json> = credentials(graph, app_object)
        .await?
        .into_iter()
        .map(|c| json!({"name": c["name"], "issuer": c["issuer"], "subject": c["subject"], "audiences": c["audiences"]}))
        .collect();
    let scopes: BTreeSet<String> = grants(prior).into_iter().map(|(_, s)| s).collect();
    let held = if sp.is_empty() {
        BTreeSet::new()
    } else {
        assigned(arm, &sp, &scopes).await?
    };
    Ok(Some(Live {
        properties: Value::from_json(&json!({
            "display_name": app["displayName"],
            "federated_credentials": creds,
            "role_assignments": grants_value(&held),
        })),
        outputs: outputs(app_id, &sp, app_object),
    }))
}

/// Brings name, credentials and assignments to `p`.
pub async fn update(
    graph: &Arm,
    arm: &Arm,
    app_object: &str,
    prior: &Value,
    prior_outputs: &Value,
    p: &Value,
) -> Result<Applied, ProviderError> {
    if text(prior, "display_name") != text(p, "display_name") {
        graph
            .put_plain(
                Method::PATCH,
                &format!("/v1.0/applications/{app_object}"),
                "",
                &json!({"displayName": text(p, "display_name")}),
            )
            .await?;
    }
    let existing = credentials(graph, app_object).await?;
    let wanted: Vec<Json> = p
        .get("federated_credentials")
        .as_list()
        .unwrap_or_default()
        .iter()
        .map(credential_body)
        .collect();
    for c in &existing {
        let same = wanted.iter().any(|w| {
            w["name"] == c["name"]
                && w["issuer"] == c["issuer"]
                && w["subject"] == c["subject"]
                && w["audiences"] == c["audiences"]
        });
        if !same {
            graph
                .delete(
                    &format!(
                        "/v1.0/applications/{app_object}/federatedIdentityCredentials/{}",
                        c["id"].as_str().unwrap_or("")
                    ),
                    "",
                )
                .await?;
        }
    }
    for w in &wanted {
        let present = existing.iter().any(|c| {
            w["name"] == c["name"]
                && w["issuer"] == c["issuer"]
                && w["subject"] == c["subject"]
                && w["audiences"] == c["audiences"]
        });
        if !present {
            graph
                .post(
                    &format!("/v1.0/applications/{app_object}/federatedIdentityCredentials"),
                    w,
                )
                .await?;
        }
    }
    let sp = prior_outputs
        .get("object_id")
        .as_str()
        .unwrap_or("")
        .to_string();
    let before = grants(prior);
    let after = grants(p);
    assign(
        arm,
        &sp,
        "ServicePrincipal",
        &after.difference(&before).cloned().collect(),
        &before.difference(&after).cloned().collect(),
    )
    .await?;
    Ok(Applied {
        remote_id: app_object.to_string(),
        outputs: prior_outputs.clone(),
    })
}

/// Removes the assignments, the service principal and the application.
pub async fn delete(
    graph: &Arm,
    arm: &Arm,
    app_object: &str,
    prior: &Value,
) -> Result<(), ProviderError> {
    if let Some(live) = read(graph, arm, app_object, prior).await? {
        let sp = live
            .outputs
            .get("object_id")
            .as_str()
            .unwrap_or("")
            .to_string();
        if !sp.is_empty() {
            let held = grants(&live.properties);
            assign(arm, &sp, "ServicePrincipal", &BTreeSet::new(), &held).await?;
            graph
                .delete(&format!("/v1.0/servicePrincipals/{sp}"), "")
                .await?;
        }
        graph
            .delete(&format!("/v1.0/applications/{app_object}"), "")
            .await?;
    }
    Ok(())
}
