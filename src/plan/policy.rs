//! What the policies (Rego, conftest's conventions) said of a plan: the data a plan carries
//! and its views show; the policy module (a layer above) evaluates them.

use serde::{Deserialize, Serialize};

/// The policies' verdict on a plan (`policy` in the JSON plan).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyVerdict {
    /// The package the rules were read from (`main` unless `--namespace`).
    pub namespace: String,
    /// The policy files evaluated, as shown (`policies/prod.rego`, or `REF:policies/prod.rego`).
    pub policies: Vec<String>,
    /// What `deny` and `violation` rules said: each fails plan and apply.
    pub denials: Vec<PolicyFinding>,
    /// What `warn` rules said: printed, and the run goes on.
    pub warnings: Vec<PolicyFinding>,
    /// Rules `exception` rules switched off (`deny_public_ingress` for `exception` `["public_ingress"]`).
    pub exceptions: Vec<String>,
}

impl PolicyVerdict {
    /// Whether a policy denies the plan.
    pub fn denies(&self) -> bool {
        !self.denials.is_empty()
    }
}

/// One message of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyFinding {
    /// The policy file that declares the rule.
    pub policy: String,
    /// The rule (`deny`, `deny_public_ingress`, `violation`, `warn_cost`).
    pub rule: String,
    /// Its message.
    pub msg: String,
    /// The resource it is about, when the rule says (`address` in an object result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl PolicyFinding {
    /// `policies/prod.rego: deny: only CI may apply prod (api.service)`, on one line: a message
    /// is built from the plan (values from files anyone can change), so its control characters
    /// are escaped and it cannot forge lines of a plan or an error.
    pub fn line(&self) -> String {
        let at = self
            .address
            .as_ref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        crate::model::grammar::escape_controls(&format!(
            "{}: {}: {}{at}",
            self.policy, self.rule, self.msg
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_cannot_forge_a_line() {
        let f = PolicyFinding {
            policy: "policies/x.rego".into(),
            rule: "deny".into(),
            msg: "bad tag\nPlan: 0 to add".into(),
            address: Some("api".into()),
        };
        assert_eq!(
            f.line(),
            "policies/x.rego: deny: bad tag\\nPlan: 0 to add (api)"
        );
    }
}
