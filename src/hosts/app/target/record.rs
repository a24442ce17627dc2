//! What a host app's rollout keeps in its record between steps: per host, the colour that
//! was live, the colour being deployed and both ports, so a killed run resumes with the same
//! colour and port and starts nothing twice.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::super::docker::Colour;
use super::super::nginx::Ports;
use crate::model::grammar::Name;
use crate::rollout::record::TargetRecord;

/// What the rollout keeps per host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStep {
    /// `address:port`.
    pub host: String,
    /// The live colour before this rollout (`None`: the first deploy).
    pub old: Option<Colour>,
    /// The colour being deployed.
    pub new: Colour,
    /// The old colour's host port.
    pub old_port: Option<u16>,
    /// The new colour's host port.
    pub port: u16,
    /// Every web service's host ports (one per replica) in the old colour (empty in records from before
    /// routes: then `old_port` is the one web service's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub old_ports: Ports,
    /// Every web service's host ports (one per replica) in the new colour (empty in records from before routes:
    /// then `port` is the one web service's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: Ports,
    /// Bytes of converge's access log for the app before this rollout: gates read only what
    /// came after (0 in records from before gates read the log).
    #[serde(default)]
    pub log_offset: u64,
}

impl HostStep {
    /// The old colour (none on a first deploy) and the new one.
    pub fn colours(&self) -> (Option<Colour>, Colour) {
        (self.old, self.new)
    }

    /// The step with its web services' ports by name: a record from before routes knew one
    /// web service (`web`, when the app has one) and kept its ports in `port`/`old_port`.
    pub fn with_ports_of(mut self, web: Option<&Name>) -> HostStep {
        if let (true, Some(web)) = (self.ports.is_empty(), web) {
            self.ports.insert(web.clone(), vec![self.port]);
            if let Some(old) = self.old_port {
                self.old_ports.insert(web.clone(), vec![old]);
            }
        }
        self
    }

    /// The host port of replica `replica` (from 1) of `service` in the new colour.
    pub fn port_of(&self, service: &Name, replica: u16) -> u16 {
        self.ports
            .get(service)
            .and_then(|p| p.get(usize::from(replica.max(1)) - 1))
            .copied()
            .unwrap_or(self.port)
    }

    /// The host ports of `service`'s replicas in the old colour (none: the old colour does
    /// not run it).
    pub fn old_ports_of(&self, service: &Name) -> &[u16] {
        self.old_ports.get(service).map_or(&[], Vec::as_slice)
    }
}

/// The host target's part of a rollout record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// Per host, in file order.
    pub hosts: Vec<HostStep>,
    /// recreate: seconds nothing served (old stopped → new switched), per host.
    #[serde(default)]
    pub downtime: Vec<f64>,
}

impl TargetRecord for HostRecord {
    const TAG: &'static str = "host";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Rollout;

    /// A version 2 record (the hosts as untagged JSON) reads as this part, host by host, with
    /// its colours typed.
    #[test]
    fn a_version_2_host_record_reads_as_the_host_part() {
        let body: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../tests/fixtures/records/v2-host-blue-green-interrupted-batch.json"
        ))
        .unwrap();
        let rec = Rollout::decode(&crate::model::Address::root("app"), &body).unwrap();
        let part = rec.details::<HostRecord>().unwrap();
        assert_eq!(part.hosts.len(), 2);
        for (step, raw) in part
            .hosts
            .iter()
            .zip(body["target"]["hosts"].as_array().unwrap())
        {
            assert_eq!(step.host, raw["host"]);
            assert_eq!(step.colours(), (Some(Colour::Blue), Colour::Green));
            assert_eq!(Some(u64::from(step.port)), raw["port"].as_u64());
            assert_eq!(step.old_port.map(u64::from), raw["old_port"].as_u64());
        }
        // A colour that is not one is a decode error, never a default.
        let mut bad = body.clone();
        bad["target"]["hosts"][1]["new"] = "purple".into();
        let rec = Rollout::decode(&crate::model::Address::root("app"), &bad).unwrap();
        let err = rec.details::<HostRecord>().unwrap_err();
        assert!(err.to_string().contains("purple"), "{err}");
    }
}
