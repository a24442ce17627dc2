//! Images in ECR by reference: whether a tag (or digest) still exists and its manifest digest,
//! for `rollout undo` (the image it goes back to must still be there) and promotion (images
//! compared by digest across per-environment repositories).

use aws_sdk_ecr::types::ImageIdentifier;

use super::api_error;
use super::ecr_repository::Ecr;
use crate::providers::ProviderError;

/// What ECR says about an image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLookup {
    /// Not an ECR reference (`nginx:1.27`, another registry): converge cannot look it up.
    NotEcr,
    /// An ECR reference whose repository or tag is gone.
    Missing,
    /// Found, with its manifest digest (`sha256:…`).
    Found(String),
}

/// An ECR image reference split: repository name, and tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrReference {
    /// The repository name (after the registry host).
    pub repository: String,
    /// The tag, if the reference has one.
    pub tag: Option<String>,
    /// The digest, if the reference pins one (`@sha256:…`).
    pub digest: Option<String>,
}

/// Parses `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG][@sha256:…]`; `None` for any
/// other registry.
pub fn parse_reference(image: &str) -> Option<EcrReference> {
    let (host, rest) = image.split_once('/')?;
    let labels: Vec<&str> = host.split('.').collect();
    let ecr = labels.len() >= 6
        && labels[1] == "dkr"
        && labels[2] == "ecr"
        && host.ends_with(".amazonaws.com")
        && labels[0].chars().all(|c| c.is_ascii_digit());
    if !ecr {
        return None;
    }
    let (name, digest) = match rest.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (rest, None),
    };
    let (repository, tag) = match name.rsplit_once(':') {
        Some((r, t)) => (r.to_string(), Some(t.to_string())),
        None => (name.to_string(), None),
    };
    Some(EcrReference {
        repository,
        tag: tag.or_else(|| digest.is_none().then(|| "latest".to_string())),
        digest,
    })
}

impl Ecr {
    /// Looks an image reference up in ECR (DescribeImages).
    pub async fn lookup(&self, image: &str) -> Result<ImageLookup, ProviderError> {
        let Some(r) = parse_reference(image) else {
            return Ok(ImageLookup::NotEcr);
        };
        let id = ImageIdentifier::builder()
            .set_image_tag(r.tag.clone().filter(|_| r.digest.is_none()))
            .set_image_digest(r.digest.clone())
            .build();
        match self
            .client()
            .describe_images()
            .repository_name(&r.repository)
            .image_ids(id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .image_details
                .unwrap_or_default()
                .into_iter()
                .find_map(|d| d.image_digest)
                .map(ImageLookup::Found)
                .unwrap_or(ImageLookup::Missing)),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_image_not_found_exception() || s.is_repository_not_found_exception()
                }) =>
            {
                Ok(ImageLookup::Missing)
            }
            Err(e) => Err(api_error("ecr:DescribeImages", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_references_are_told_from_other_registries() {
        let r =
            parse_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:v7").unwrap();
        assert_eq!(r.repository, "team/api");
        assert_eq!(r.tag.as_deref(), Some("v7"));
        let d =
            parse_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@sha256:ab").unwrap();
        assert_eq!((d.tag, d.digest.as_deref()), (None, Some("sha256:ab")));
        assert_eq!(
            parse_reference("123456789012.dkr.ecr.eu-west-1.amazonaws.com/api")
                .unwrap()
                .tag
                .as_deref(),
            Some("latest")
        );
        assert!(parse_reference("nginx:1.27").is_none());
        assert!(parse_reference("ghcr.io/acme/api:v1").is_none());
        assert!(parse_reference("localhost:5000/api:v1").is_none());
    }
}
