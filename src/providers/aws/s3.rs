//! S3, for copies of host backups (`backup.copy_to.s3`): a stream of unknown length uploaded
//! as a multipart upload in parts of 8 MiB, so memory stays bounded whatever the backup's size,
//! its SHA-256 computed on the way and stored as the object's metadata. A failed upload is
//! aborted, leaving no parts behind.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::api_error;
use crate::providers::ProviderError;

/// Bytes per part (S3 takes 5 MiB at least, except for the last).
const PART: usize = 8 * 1024 * 1024;

/// The S3 client.
pub struct S3 {
    client: Client,
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes stored.
    pub size: u64,
    /// SHA-256 of those bytes, hex.
    pub sha256: String,
}

impl S3 {
    /// Builds the client from the shared SDK configuration; path-style addressing where an
    /// endpoint is configured (an S3-compatible server, or the local emulator).
    pub fn new(shared: &super::clients::Shared) -> S3 {
        let mut config = aws_sdk_s3::config::Builder::from(&shared.sdk)
            .retry_partition(shared.partition.clone())
            .interceptor(shared.counter.clone());
        if shared.sdk.endpoint_url().is_some() {
            config = config.force_path_style(true);
        }
        S3 {
            client: Client::from_conf(config.build()),
        }
    }

    /// Uploads everything `body` yields to `bucket`/`key`.
    pub async fn upload(
        &self,
        bucket: &str,
        key: &str,
        mut body: impl AsyncRead + Unpin,
    ) -> Result<Uploaded, ProviderError> {
        let started = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| api_error("CreateMultipartUpload", e))?;
        let upload_id = started.upload_id().unwrap_or_default().to_string();
        match self.parts(bucket, key, &upload_id, &mut body).await {
            Ok((parts, uploaded)) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| api_error("CompleteMultipartUpload", e))?;
                Ok(uploaded)
            }
            Err(e) => {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    /// Reads `body` part by part and uploads each.
    async fn parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        body: &mut (impl AsyncRead + Unpin),
    ) -> Result<(Vec<CompletedPart>, Uploaded), ProviderError> {
        let mut parts = Vec::new();
        let mut digest = Sha256::new();
        let mut size = 0u64;
        loop {
            let mut buf = Vec::with_capacity(PART);
            let read = (&mut *body)
                .take(PART as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| ProviderError::Api {
                    operation: format!("reading the copy for s3://{bucket}/{key}"),
                    message: e.to_string(),
                })?;
            // The first part is sent even when empty, so an empty body is an empty object.
            if read == 0 && !parts.is_empty() {
                break;
            }
            digest.update(&buf);
            size += read as u64;
            let number = parts.len() as i32 + 1;
            let answer = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(buf))
                .send()
                .await
                .map_err(|e| api_error("UploadPart", e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(answer.e_tag().map(str::to_string))
                    .build(),
            );
            if read < PART {
                break;
            }
        }
        Ok((
            parts,
            Uploaded {
                size,
                sha256: hex::encode(digest.finalize()),
            },
        ))
    }
}
