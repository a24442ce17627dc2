//! The price tables estimates use: shipped with converge (dated), or the project's
//! `prices.json` written by `converge prices update`. Reading and writing the file lives here;
//! fetching from the clouds' price APIs lives in `providers::pricing`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// The file `prices update` writes under the project root; plans read it when present.
pub const PRICES_FILE: &str = "prices.json";

/// Version of the price file format.
pub const PRICES_FORMAT_VERSION: u32 = 1;

/// Fargate on-demand Linux prices of a region: per vCPU-hour and per GB-hour, x86 and ARM64.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FargatePrice {
    /// x86_64 per vCPU-hour.
    pub vcpu_hour: f64,
    /// x86_64 per GB-hour.
    pub gb_hour: f64,
    /// ARM64 (Graviton) per vCPU-hour.
    pub arm_vcpu_hour: f64,
    /// ARM64 (Graviton) per GB-hour.
    pub arm_gb_hour: f64,
}

/// AWS prices of one region (USD).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AwsRegionPrices {
    /// Fargate compute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate: Option<FargatePrice>,
    /// Application Load Balancer per hour (LCUs extra).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb_hour: Option<f64>,
    /// ECR storage per GB-month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr_gb_month: Option<f64>,
    /// EC2 on-demand Linux, shared tenancy, per hour by instance type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ec2_hour: BTreeMap<String, f64>,
}

/// Azure prices of one region (USD, retail, pay-as-you-go).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AzureRegionPrices {
    /// Container Registry per day, by SKU (`Basic`, `Standard`, `Premium`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub acr_day: BTreeMap<String, f64>,
    /// Linux virtual machines per hour, by size (`Standard_B2s`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vm_hour: BTreeMap<String, f64>,
}

/// One cloud's prices, dated, with where they came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudPrices<R> {
    /// The date the prices were published or fetched (YYYY-MM-DD).
    pub as_of: String,
    /// Where they came from.
    pub source: String,
    /// Prices by region code (`us-east-1`, `westeurope`).
    pub regions: BTreeMap<String, R>,
}

/// Every price converge knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// [`PRICES_FORMAT_VERSION`].
    pub format_version: u32,
    /// AWS.
    pub aws: CloudPrices<AwsRegionPrices>,
    /// Azure.
    pub azure: CloudPrices<AzureRegionPrices>,
}

/// Where the table in use was read from.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceOrigin {
    /// The tables compiled into converge.
    Shipped,
    /// A project's `prices.json`.
    File(PathBuf),
}

/// Reading or writing a price file failed.
#[derive(Debug, thiserror::Error)]
pub enum PriceFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a price table.
    #[error(
        "{path}:{line}:{column}: not a converge price table: {message} (run `converge prices update` again, or delete the file to use the shipped prices)"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Written by a newer converge.
    #[error("{path}: price file format {found}, this converge reads {PRICES_FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
}

static SHIPPED: LazyLock<PriceTable> = LazyLock::new(|| {
    serde_json::from_str(include_str!("prices.json")).expect("the shipped price table parses")
});

impl PriceTable {
    /// The tables shipped with this converge.
    pub fn shipped() -> &'static PriceTable {
        &SHIPPED
    }

    /// The table of a project: its `prices.json` when present, else the shipped one.
    pub fn for_project(root: &Path) -> Result<(PriceTable, PriceOrigin), PriceFileError> {
        let path = root.join(PRICES_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::parse(&text, &path)?, PriceOrigin::File(path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((SHIPPED.clone(), PriceOrigin::Shipped))
            }
            Err(source) => Err(PriceFileError::Io { path, source }),
        }
    }

    /// Parses a price file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<PriceTable, PriceFileError> {
        let table: PriceTable =
            serde_json::from_str(text).map_err(|e| PriceFileError::Malformed {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        if table.format_version != PRICES_FORMAT_VERSION {
            return Err(PriceFileError::Version {
                path: path.to_path_buf(),
                found: table.format_version,
            });
        }
        Ok(table)
    }

    /// Writes the table to `root/prices.json` atomically: a reader sees the old file or the
    /// new one, never half of one.
    pub fn save(&self, root: &Path) -> Result<PathBuf, PriceFileError> {
        let path = root.join(PRICES_FILE);
        let tmp = root.join(format!(".{PRICES_FILE}.tmp"));
        let io = |source| PriceFileError::Io {
            path: path.clone(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self).expect("price tables serialize");
        text.push('\n');
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }

    /// The AWS prices of a region.
    pub fn aws_region(&self, region: &str) -> Option<&AwsRegionPrices> {
        self.aws.regions.get(region)
    }

    /// The Azure prices of a location, written either way (`West Europe` or `westeurope`).
    pub fn azure_region(&self, location: &str) -> Option<&AzureRegionPrices> {
        self.azure.regions.get(&azure_region_code(location))
    }

    /// The Fargate prices of a region.
    pub fn fargate(&self, region: &str) -> Option<FargatePrice> {
        self.aws_region(region).and_then(|r| r.fargate)
    }
}

/// `West Europe` → `westeurope`: the ARM region code of a location's display name.
pub fn azure_region_code(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_is_dated_and_covers_the_main_regions() {
        let t = PriceTable::shipped();
        assert_eq!(t.aws.as_of, "2026-11-01");
        for region in ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"] {
            assert!(t.fargate(region).is_some(), "{region}");
        }
        assert!(t.azure_region("West Europe").is_some());
        assert!(t.fargate("mars-north-1").is_none());
    }

    #[test]
    fn a_broken_file_is_named_with_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PRICES_FILE),
            "{\n  \"format_version\": 1,\n  \"aws\": {",
        )
        .unwrap();
        let err = PriceTable::for_project(dir.path()).unwrap_err().to_string();
        assert!(err.contains("prices.json:3:"), "{err}");
        assert!(err.contains("not a converge price table"), "{err}");
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = PriceTable::shipped().clone();
        t.aws.as_of = "2026-11-23".into();
        t.save(dir.path()).unwrap();
        let (back, origin) = PriceTable::for_project(dir.path()).unwrap();
        assert_eq!(back, t);
        assert_eq!(origin, PriceOrigin::File(dir.path().join(PRICES_FILE)));
    }
}
