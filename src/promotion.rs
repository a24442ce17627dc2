//! Promotion (DESIGN §5): an environment with `promotion: { from: staging }` rolls out only
//! images that completed a rollout (or a rolling deploy, or a canary service's first revision)
//! in `staging`, proven from staging's audit trail, which must verify. Images are compared by
//! manifest digest where ECR can resolve them (each completed rollout records its images'
//! digests), since teams push one build to per-environment repositories; otherwise by the full
//! image reference.
//!
//! What the proof is worth: it guards against mistakes and against edits of staging's trail
//! made without recomputing the whole hash chain; someone who can rewrite staging's database
//! can forge it.

use std::collections::BTreeMap;

use crate::audit::{Event, EventKind};
use crate::model::Address;
use crate::providers::ProviderError;
use crate::providers::aws::AwsProvider;
use crate::providers::aws::ecr_images::ImageLookup;

/// One image that completed a rollout in the environment promoted from.
#[derive(Debug, Clone, PartialEq)]
pub struct Passed {
    /// The service that ran it there.
    pub address: String,
    /// The image reference as it ran there.
    pub image: String,
    /// Its manifest digest there, when ECR resolved it.
    pub digest: Option<String>,
    /// When its rollout completed (RFC 3339).
    pub time: String,
}

/// What the environment promoted from proves.
#[derive(Debug, Clone, PartialEq)]
pub enum Proof {
    /// Its trail verifies; these images completed rollouts.
    Verified(Vec<Passed>),
    /// It proves nothing: its trail does not verify, or it has no state.
    Nothing(String),
}

impl Proof {
    /// The proof in a verified chain of events (`Nothing` when it does not verify).
    pub fn from_chain(from: &str, events: &[Event], head_seq: i64, head_hash: &str) -> Proof {
        if let Err(broken) = crate::audit::verify(events, head_seq, head_hash) {
            return Proof::Nothing(format!(
                "{from}'s audit trail does not verify (event {}: {}), so it proves nothing",
                broken.seq, broken.reason
            ));
        }
        let mut passed = Vec::new();
        for e in events.iter().filter(|e| {
            e.body.outcome == "ok" && e.body.kind().is_some_and(EventKind::completes_a_revision)
        }) {
            let revision = match e.body.revision_after() {
                Ok(r) => r.unwrap_or_default(),
                Err(err) => {
                    return Proof::Nothing(format!(
                        "{from}'s audit trail holds an event converge cannot read ({err}), so it proves nothing"
                    ));
                }
            };
            let digests = revision.digests.unwrap_or_default();
            for image in revision.images {
                passed.push(Passed {
                    address: e.body.address.clone().unwrap_or_default(),
                    digest: digests.get(&image).cloned(),
                    image,
                    time: e.time.clone(),
                });
            }
        }
        Proof::Verified(passed)
    }

    /// The completed rollout that proves `image` (whose digest here is `digest`, if ECR knows
    /// it): the same digest, or, where either side has none, the same reference.
    pub fn find(&self, image: &str, digest: Option<&str>) -> Result<&Passed, NotPromoted> {
        match self {
            Proof::Nothing(why) => Err(NotPromoted(why.clone())),
            Proof::Verified(passed) => passed
                .iter()
                .rev()
                .find(|p| match (digest, p.digest.as_deref()) {
                    (Some(here), Some(there)) => here == there,
                    _ => p.image == image,
                })
                .ok_or_else(|| NotPromoted("it has not completed a rollout there".into())),
        }
    }
}

/// Why an image is not proven by the environment promoted from, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotPromoted(pub String);

/// The manifest digest of each ECR image among `images` (others are left out).
pub async fn digests(
    aws: &AwsProvider,
    images: &[String],
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut out = BTreeMap::new();
    for image in images {
        if let ImageLookup::Found(digest) = aws.ecr().lookup(image).await? {
            out.insert(image.clone(), digest);
        }
    }
    Ok(out)
}

/// The promotion verdict on one service's images.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The service.
    pub address: Address,
    /// Why each unproven image is refused (`IMAGE has not …`); empty when all passed.
    pub refused: Vec<String>,
    /// How each proven image passed (`IMAGE completed a rollout in staging (ADDR, TIME)`).
    pub passed: Vec<String>,
}

impl Verdict {
    /// The verdict on `images` of `address` against `proof` from `from`, digests resolved here.
    pub fn judge(
        address: &Address,
        from: &str,
        images: &[String],
        here: &BTreeMap<String, String>,
        proof: &Proof,
    ) -> Verdict {
        let mut v = Verdict {
            address: address.clone(),
            refused: Vec::new(),
            passed: Vec::new(),
        };
        for image in images {
            let digest = here.get(image).map(String::as_str);
            match proof.find(image, digest) {
                Ok(p) => v.passed.push(format!(
                    "{image} completed a rollout in {from} ({}, {}{})",
                    p.address,
                    p.time,
                    if digest.is_some() && p.digest.is_some() {
                        ", same digest"
                    } else {
                        ""
                    }
                )),
                Err(why) => v
                    .refused
                    .push(format!("{image} is not promoted from {from}: {why}")),
            }
        }
        v
    }

    /// The note a plan shows on the change.
    pub fn note(&self) -> String {
        if self.refused.is_empty() {
            format!("promotion: {}", self.passed.join("; "))
        } else {
            format!(
                "promotion: {}; apply refuses it unless --allow-unpromoted \"REASON\"",
                self.refused.join("; ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(passed: Vec<(&str, Option<&str>)>) -> Proof {
        Proof::Verified(
            passed
                .into_iter()
                .map(|(image, digest)| Passed {
                    address: "api".into(),
                    image: image.into(),
                    digest: digest.map(str::to_string),
                    time: "t".into(),
                })
                .collect(),
        )
    }

    #[test]
    fn images_match_by_digest_across_repositories_else_by_reference() {
        let p = proof(vec![
            (
                "111.dkr.ecr.us-east-1.amazonaws.com/staging-api:v2",
                Some("sha256:aa"),
            ),
            ("nginx:1.27", None),
        ]);
        // Another repository, the same build.
        assert!(
            p.find(
                "111.dkr.ecr.us-east-1.amazonaws.com/prod-api:v2",
                Some("sha256:aa")
            )
            .is_ok()
        );
        // The same tag, another build.
        assert!(
            p.find(
                "111.dkr.ecr.us-east-1.amazonaws.com/staging-api:v2",
                Some("sha256:bb")
            )
            .is_err()
        );
        assert!(p.find("nginx:1.27", None).is_ok());
        assert!(p.find("nginx:1.28", None).is_err());
        let nothing = Proof::Nothing("staging's audit trail does not verify".into());
        assert!(
            nothing
                .find("nginx:1.27", None)
                .unwrap_err()
                .0
                .contains("does not verify")
        );
    }
}
