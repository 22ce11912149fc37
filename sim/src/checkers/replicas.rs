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
    /// The first index left in its raft log (past 1 once the log was compacted).
    pub log_first_index: u64,
}

/// The replicas of one `DescribeReplicas` answer that carry a digest: partitions' and the
/// metadata group's (a retired partition has none and is left out).
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
                log_first_index: replica.get("log_first_index").and_then(Value::as_u64).unwrap_or(1),
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

/// The groups of diverged violations' messages (`partition group 0x…:`), in order.
pub fn diverged_groups(violations: &[Violation]) -> Vec<u64> {
    violations
        .iter()
        .filter_map(|v| v.message.strip_prefix("partition group 0x")?.split(':').next())
        .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
        .collect()
}

/// Where replicas' records differ: for each node's `DescribeReplicaRecords` answer, the keys
/// (at most `shown`) whose value hash differs from the first node's or that one side lacks.
pub fn record_differences(answers: &[Value], shown: usize) -> String {
    let records = |answer: &Value| -> BTreeMap<String, String> {
        answer["Records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.get(0)?.as_str()?.to_string(), r.get(1)?.as_str()?.to_string())))
            .collect()
    };
    let Some(first) = answers.first() else { return String::from("no records fetched") };
    let base = records(first);
    let mut lines = Vec::new();
    for answer in &answers[1..] {
        let other = records(answer);
        let keys: std::collections::BTreeSet<&String> = base.keys().chain(other.keys()).collect();
        for key in keys.into_iter().filter(|k| base.get(*k) != other.get(*k)).take(shown) {
            lines.push(format!(
                "key {key}: node {} {}, node {} {}",
                first["Node"],
                base.get(key).map_or("absent", String::as_str),
                answer["Node"],
                other.get(key).map_or("absent", String::as_str)
            ));
        }
    }
    if lines.is_empty() {
        String::from("the records fetched now agree")
    } else {
        lines.join("; ")
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
        ReplicaReport { node, group, applied_index, digest, log_first_index: 1 }
    }

    #[test]
    fn answers_parse_and_skip_the_metadata_group() {
        let answer = json!({"Node": 4, "Replicas": [
            {"group": 0, "applied_index": 9, "leader": 1},
            {"group": 77, "applied_index": 12, "leader": 4, "log_first_index": 9,
             "digest": {"records": 3, "bytes": 90, "hash": 5}}
        ]});
        assert_eq!(parse_reports(&answer), vec![ReplicaReport { log_first_index: 9, ..report(4, 77, 12, (3, 5)) }]);
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
    fn record_differences_name_the_keys_that_differ() {
        let a = json!({"Node": 1, "Records": [["01aa", "11"], ["01bb", "22"], ["01cc", "33"]]});
        let b = json!({"Node": 2, "Records": [["01aa", "11"], ["01bb", "99"]]});
        let text = record_differences(&[a.clone(), b], 5);
        assert_eq!(text, "key 01bb: node 1 22, node 2 99; key 01cc: node 1 33, node 2 absent");
        assert_eq!(record_differences(&[a.clone(), a], 5), "the records fetched now agree");
        let violation = Violation { checker: NAME, key: None, message: "partition group 0x2a: replicas differ".into() };
        assert_eq!(diverged_groups(&[violation]), vec![0x2a]);
    }

    #[test]
    fn different_data_at_one_index_is_a_violation() {
        let reports = [report(1, 7, 10, (2, 9)), report(2, 7, 10, (2, 8)), report(3, 7, 10, (2, 9))];
        let Verdict::Diverged(violations) = judge(&reports) else { panic!("expected a divergence") };
        assert_eq!(violations.len(), 1);
        assert!(violations[0].message.contains("node 2 has 2 records"));
    }
}
