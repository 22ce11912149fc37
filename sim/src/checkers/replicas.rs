//! After every fault has healed, the replicas of each partition converge: once they have
//! applied the same log index they hold identical data. The run asks every node for its
//! replicas' applied index and digest (`SquallAdmin.DescribeReplicas`) until each partition's
//! replicas stand at one index, then compares their digests.
//!
//! Unlike the history checkers this one looks at the nodes, not at what clients saw: it catches
//! a replica that applied an entry differently, or lost a write that clients never read back.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Violation;

/// The checker's name in violations.
pub const NAME: &str = "replicas-agree";

/// One replica as a node described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaReport {
    /// The node hosting it.
    pub node: u64,
    /// Its group.
    pub group: u64,
    /// The index of the last entry it applied.
    pub applied_index: u64,
    /// Its data digest: record count and hash.
    pub digest: (u64, u64),
}

/// The partition replicas of one `DescribeReplicas` answer (the metadata group has no digest
/// and is left out).
pub fn parse_reports(answer: &Value) -> Vec<ReplicaReport> {
    let node = answer.get("Node").and_then(Value::as_u64).unwrap_or(0);
    let replicas = answer.get("Replicas").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    replicas
        .iter()
        .filter_map(|replica| {
            let digest = replica.get("digest")?;
            Some(ReplicaReport {
                node,
                group: replica.get("group")?.as_u64()?,
                applied_index: replica.get("applied_index")?.as_u64()?,
                digest: (digest.get("records")?.as_u64()?, digest.get("hash")?.as_u64()?),
            })
        })
        .collect()
}

/// What one round of reports shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition's replicas stand at one index with one digest.
    Agree {
        /// Partitions compared.
        partitions: usize,
    },
    /// Some partition's replicas have not applied the same index yet: ask again.
    Pending {
        /// A partition still catching up, described.
        example: String,
    },
    /// Replicas at the same index hold different data.
    Diverged(Vec<Violation>),
}

/// Judges one round of reports from every node.
pub fn judge(reports: &[ReplicaReport]) -> Verdict {
    let mut by_group: BTreeMap<u64, Vec<&ReplicaReport>> = BTreeMap::new();
    for report in reports {
        by_group.entry(report.group).or_default().push(report);
    }
    let mut violations = Vec::new();
    let mut pending = None;
    for (group, replicas) in &by_group {
        let first = replicas[0];
        if replicas.iter().any(|r| r.applied_index != first.applied_index) {
            let indexes: Vec<String> =
                replicas.iter().map(|r| format!("node {} at {}", r.node, r.applied_index)).collect();
            pending.get_or_insert_with(|| format!("group {group:#x}: {}", indexes.join(", ")));
            continue;
        }
        if replicas.iter().any(|r| r.digest != first.digest) {
            let digests: Vec<String> = replicas
                .iter()
                .map(|r| format!("node {} has {} records, hash {:016x}", r.node, r.digest.0, r.digest.1))
                .collect();
            violations.push(Violation {
                checker: NAME,
                key: None,
                message: format!(
                    "partition group {group:#x}: replicas at applied index {} differ: {}",
                    first.applied_index,
                    digests.join("; ")
                ),
            });
        }
    }
    if !violations.is_empty() {
        Verdict::Diverged(violations)
    } else if let Some(example) = pending {
        Verdict::Pending { example }
    } else {
        Verdict::Agree { partitions: by_group.len() }
    }
}

/// The violation of replicas that never reached one index within the bound.
pub fn not_converged(example: &str, waited_ms: u64) -> Violation {
    Violation {
        checker: NAME,
        key: None,
        message: format!("replicas did not reach one applied index within {waited_ms} ms after the heal: {example}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(node: u64, group: u64, applied_index: u64, digest: (u64, u64)) -> ReplicaReport {
        ReplicaReport { node, group, applied_index, digest }
    }

    #[test]
    fn answers_parse_and_skip_the_metadata_group() {
        let answer = json!({"Node": 4, "Replicas": [
            {"group": 0, "applied_index": 9, "leader": 1},
            {"group": 77, "applied_index": 12, "leader": 4, "digest": {"records": 3, "bytes": 90, "hash": 5}}
        ]});
        assert_eq!(parse_reports(&answer), vec![report(4, 77, 12, (3, 5))]);
    }

    #[test]
    fn equal_indexes_and_digests_agree() {
        let reports = [report(1, 7, 10, (2, 9)), report(2, 7, 10, (2, 9)), report(3, 8, 4, (0, 1))];
        assert_eq!(judge(&reports), Verdict::Agree { partitions: 2 });
    }

    #[test]
    fn a_replica_behind_is_pending_not_a_violation() {
        let reports = [report(1, 7, 10, (2, 9)), report(2, 7, 9, (1, 3))];
        assert!(matches!(judge(&reports), Verdict::Pending { example } if example.contains("node 2 at 9")));
    }

    #[test]
    fn different_data_at_one_index_is_a_violation() {
        let reports = [report(1, 7, 10, (2, 9)), report(2, 7, 10, (2, 8)), report(3, 7, 10, (2, 9))];
        let Verdict::Diverged(violations) = judge(&reports) else { panic!("expected a divergence") };
        assert_eq!(violations.len(), 1);
        assert!(violations[0].message.contains("node 2 has 2 records"));
    }
}
