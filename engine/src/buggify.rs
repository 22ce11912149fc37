//! BUGGIFY-style fault points: places in the engine where a simulation may make a legal but
//! unusual thing happen (a dropped raft message, a broken peer link, a slow answer, a refused
//! proposal, a forgotten leader hint), so the code paths that handle them run far more often
//! than real failures would make them. Each point only ever does something the engine must
//! already survive in production; the simulator's checkers then show that it does.
//!
//! A simulation switches the points on with [`enable`] and a seed. Each [`Site`] is then
//! active for the whole run or not at all (decided from the seed and the site's name, so a seed
//! always activates the same sites), and an active site fires on a share of the times it is
//! reached, drawn from a generator seeded by the run. Runs stay deterministic because a
//! simulation runs its tasks on one thread in a fixed order.
//!
//! The state is per thread: a simulated cluster runs on the thread of its runtime, and
//! simulations of parallel tests must not share it. In a real build [`fires`] is a constant
//! `false` and [`enable`] refuses.

use std::cell::RefCell;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// Chance, per million, that a site is active in a buggified run.
const SITE_ACTIVE_PER_MILLION: u64 = 250_000;

/// A fault point in the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Site {
    /// A raft message is dropped instead of queued for its peer (raft retransmits).
    DropRaftMessage,
    /// After writing a batch, a peer link is closed as if the connection broke: queued messages
    /// are dropped, requests waiting on the link are answered lost, and the link reconnects.
    BreakPeerLink,
    /// A node answers a routed request only after an extra delay.
    SlowResponse,
    /// A leader refuses a proposal as if it were not the leader; the router retries elsewhere.
    RefuseProposal,
    /// A replica holds its outgoing raft messages for a while after persisting a ready.
    DelayRaftMessages,
    /// A router forgets a partition's leader hint before routing, and so searches for it.
    ForgetLeaderHint,
}

impl Site {
    /// Every site.
    pub const ALL: [Site; 6] = [
        Site::DropRaftMessage,
        Site::BreakPeerLink,
        Site::SlowResponse,
        Site::RefuseProposal,
        Site::DelayRaftMessages,
        Site::ForgetLeaderHint,
    ];

    /// The site's name in timelines.
    pub fn name(self) -> &'static str {
        match self {
            Site::DropRaftMessage => "drop-raft-message",
            Site::BreakPeerLink => "break-peer-link",
            Site::SlowResponse => "slow-response",
            Site::RefuseProposal => "refuse-proposal",
            Site::DelayRaftMessages => "delay-raft-messages",
            Site::ForgetLeaderHint => "forget-leader-hint",
        }
    }

    /// Chance, per million, that an active site fires each time it is reached. Sites reached on
    /// every message fire rarely, so that an active site perturbs a run without stopping it.
    fn fire_per_million(self) -> u64 {
        match self {
            Site::DropRaftMessage => 10_000,
            Site::BreakPeerLink => 1_000,
            Site::SlowResponse => 20_000,
            Site::RefuseProposal => 20_000,
            Site::DelayRaftMessages => 10_000,
            Site::ForgetLeaderHint => 50_000,
        }
    }
}

/// One site's state in a buggified run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteReport {
    /// The site.
    pub site: Site,
    /// Whether the seed activated it.
    pub active: bool,
    /// How many times it fired.
    pub fired: u64,
}

struct State {
    rng: ChaCha8Rng,
    sites: Vec<SiteReport>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Switches the fault points on for this thread's simulation, seeded by `seed`. Fails in a
/// real build.
pub fn enable(seed: u64) -> Result<(), &'static str> {
    if !cfg!(madsim) {
        return Err("fault points exist only in simulation builds");
    }
    let sites =
        Site::ALL.into_iter().map(|site| SiteReport { site, active: site_active(seed, site), fired: 0 }).collect();
    let state = State { rng: ChaCha8Rng::seed_from_u64(seed ^ 0xb066_1f7e_5eed_0001), sites };
    STATE.with(|cell| *cell.borrow_mut() = Some(state));
    Ok(())
}

/// Switches the fault points off for this thread.
pub fn disable() {
    STATE.with(|cell| *cell.borrow_mut() = None);
}

/// Whether `site` fires now. Always false in a real build and when the points are off.
#[inline]
pub fn fires(site: Site) -> bool {
    if !cfg!(madsim) {
        return false;
    }
    STATE.with(|cell| {
        let mut state = cell.borrow_mut();
        let Some(state) = state.as_mut() else { return false };
        let index = site as usize;
        if !state.sites[index].active {
            return false;
        }
        let fired = state.rng.next_u64() % 1_000_000 < site.fire_per_million();
        if fired {
            state.sites[index].fired += 1;
        }
        fired
    })
}

/// Each site's state this run, or nothing when the points are off.
pub fn report() -> Vec<SiteReport> {
    STATE.with(|cell| cell.borrow().as_ref().map(|state| state.sites.clone()).unwrap_or_default())
}

/// Whether `seed` activates `site`: a hash of both, so that adding a site does not change
/// which of the others a seed activates.
fn site_active(seed: u64, site: Site) -> bool {
    let mut hash = seed ^ 0x9e37_79b9_7f4a_7c15;
    for byte in site.name().bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A final mix (splitmix64's), so nearby seeds activate unrelated sets.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    hash % 1_000_000 < SITE_ACTIVE_PER_MILLION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_fires_unless_enabled() {
        disable();
        for site in Site::ALL {
            for _ in 0..1_000 {
                assert!(!fires(site));
            }
        }
        assert!(report().is_empty());
    }

    #[test]
    fn a_real_build_refuses_to_enable() {
        if cfg!(madsim) {
            assert_eq!(enable(1), Ok(()));
            disable();
        } else {
            assert!(enable(1).is_err());
            assert!(!fires(Site::DropRaftMessage));
        }
    }

    #[test]
    fn seeds_activate_a_stable_share_of_sites() {
        let mut active = 0;
        let seeds = 0..2_000u64;
        for seed in seeds.clone() {
            for site in Site::ALL {
                assert_eq!(site_active(seed, site), site_active(seed, site));
                active += u64::from(site_active(seed, site));
            }
        }
        let total = 2_000 * Site::ALL.len() as u64;
        let share_per_million = active * 1_000_000 / total;
        assert!(
            (200_000..300_000).contains(&share_per_million),
            "about a quarter of sites should be active, not {share_per_million} per million"
        );
        // Every site is active for some seed and inactive for another.
        for site in Site::ALL {
            assert!(seeds.clone().any(|s| site_active(s, site)));
            assert!(seeds.clone().any(|s| !site_active(s, site)));
        }
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::BTreeSet<&str> = Site::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Site::ALL.len());
    }
}
