//! Planted bugs: deliberate mistakes at a few places in the engine that exist only in simulation
//! builds (`--cfg madsim`) and are switched on by name, so the simulator can show that its
//! checkers catch what they claim to catch, and measure how many seeds that takes.
//!
//! In a real build [`active`] is a constant `false` and [`plant`] refuses every bug, so no
//! planted bug can reach a real node.

use std::sync::atomic::{AtomicU32, Ordering};

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// The leader answers a write as soon as it is in its own log, before a quorum holds it
    /// durably: a leader lost right after loses an acknowledged write.
    AckBeforeQuorum,
    /// A replica that believes it leads serves strongly consistent reads from its own state,
    /// without a log round: a deposed leader cut off from the others serves stale reads.
    StaleLeaderReads,
    /// Raft's log entries and hard state are written without fsync: a power failure loses
    /// votes and acknowledged entries.
    SkipLogFsync,
    /// Stored items are decoded without checking their checksum: a corrupted read reaches the
    /// client.
    IgnoreChecksums,
    /// A split loses the first partition key of its upper half, as a split that copied that
    /// half from a cursor past its first key would.
    SplitDropsBoundary,
}

impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 5] =
        [Bug::AckBeforeQuorum, Bug::StaleLeaderReads, Bug::SkipLogFsync, Bug::IgnoreChecksums, Bug::SplitDropsBoundary];

    /// The bug's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeQuorum => "ack-before-quorum",
            Bug::StaleLeaderReads => "stale-leader-reads",
            Bug::SkipLogFsync => "skip-log-fsync",
            Bug::IgnoreChecksums => "ignore-checksums",
            Bug::SplitDropsBoundary => "split-drops-boundary",
        }
    }

    /// The bug called `name`.
    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|bug| bug.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl std::fmt::Display for Bug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The planted bugs of this process (a simulation runs one cluster per process).
static PLANTED: AtomicU32 = AtomicU32::new(0);

/// Plants `bug` for the rest of the process. Fails in a real build.
pub fn plant(bug: Bug) -> Result<(), &'static str> {
    if cfg!(madsim) {
        PLANTED.fetch_or(bug.bit(), Ordering::Relaxed);
        Ok(())
    } else {
        Err("planted bugs exist only in simulation builds")
    }
}

/// Whether `bug` is planted.
#[inline]
pub fn active(bug: Bug) -> bool {
    cfg!(madsim) && PLANTED.load(Ordering::Relaxed) & bug.bit() != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for bug in Bug::ALL {
            assert_eq!(Bug::from_name(bug.name()), Some(bug));
        }
        assert_eq!(Bug::from_name("no-such-bug"), None);
    }

    #[cfg(not(madsim))]
    #[test]
    fn a_real_build_refuses_every_planted_bug() {
        for bug in Bug::ALL {
            assert!(plant(bug).is_err());
            assert!(!active(bug));
        }
    }
}
