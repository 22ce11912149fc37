//! What a node's work costs in time, when its hardware is modelled rather than real.
//!
//! Under the simulator, time stands still while code computes and RocksDB's calls return at
//! once, so without a model a request would cost only network time and one node could serve any
//! load. A [`ResourceModel`] turns the work a node does — requests received, replicated entries
//! applied, storage reads, writes, bytes and syncs — into time: the engine measures its work as
//! it goes and, at the points where a real node would have waited for its CPU or its disk,
//! awaits what the model says. A real node has no model; its hardware pays.
//!
//! Storage work is measured by [`MeteredStore`](crate::storage::MeteredStore) into a
//! thread-local meter. The engine's storage calls are synchronous and do not yield, so the work
//! of one synchronous section (a request's operation, one raft `Ready`) is exactly what the
//! meter holds when the section ends; the caller takes it with [`take_work`] before its next
//! `.await`, so work of two tasks never mixes.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;

/// Storage work done by one synchronous section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Point reads and range seeks.
    pub reads: u64,
    /// Bytes of keys and values read.
    pub read_bytes: u64,
    /// Write batches.
    pub writes: u64,
    /// Bytes of keys and values written.
    pub write_bytes: u64,
    /// Syncs (synced batches and explicit syncs).
    pub syncs: u64,
}

impl Work {
    /// Whether nothing was done.
    pub fn is_empty(&self) -> bool {
        *self == Work::default()
    }

    fn add(&mut self, other: Work) {
        self.reads += other.reads;
        self.read_bytes += other.read_bytes;
        self.writes += other.writes;
        self.write_bytes += other.write_bytes;
        self.syncs += other.syncs;
    }
}

/// Where in a node the work was done, and the CPU work it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage<'a> {
    /// One API request arriving at the node that received it: decoding, validation, routing,
    /// and running what runs locally (an eventually consistent read, every operation of a
    /// single node). Paid before the request is handled.
    Request {
        /// The DynamoDB operation.
        operation: &'a str,
        /// Size of the request body.
        body_bytes: u64,
    },
    /// The storage work a request did locally, paid after it was handled.
    Local,
    /// One raft `Ready` of a replica: log entries persisted and entries applied.
    Replicate {
        /// Entries applied to the state machine.
        entries_applied: u64,
        /// Bytes of the applied entries.
        applied_bytes: u64,
    },
}

/// A future the engine awaits to pay for work.
pub type Payment = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A node's resource model, as node settings hold it.
#[derive(Clone)]
pub struct Resources(pub std::sync::Arc<dyn ResourceModel>);

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resources")
    }
}

/// Turns a node's work into the time its hardware would take.
pub trait ResourceModel: Send + Sync + 'static {
    /// The wait for `stage`'s CPU work and `work` on the disk, queued behind whatever this
    /// node's CPU and disk are already doing.
    fn pay(&self, stage: Stage<'_>, work: Work) -> Payment;

    /// The wait for `bytes` this node sends (a peer transport batch, an HTTP response) to
    /// leave through its network link, queued behind what the link is already sending.
    fn transmit(&self, bytes: u64) -> Payment;

    /// Counts `bytes` this node received (a peer frame, an HTTP request). Receiving costs no
    /// wait: the sender's link already paid for the transfer.
    fn receive(&self, bytes: u64);
}

thread_local! {
    static METER: Cell<Work> = const { Cell::new(Work { reads: 0, read_bytes: 0, writes: 0, write_bytes: 0, syncs: 0 }) };
}

/// Adds storage work to this thread's meter.
pub fn record_work(work: Work) {
    METER.with(|meter| {
        let mut total = meter.get();
        total.add(work);
        meter.set(total);
    });
}

/// Takes the work recorded on this thread since the last call, leaving the meter empty.
pub fn take_work() -> Work {
    METER.with(|meter| meter.replace(Work::default()))
}

/// Runs `section` and returns the storage work it did, leaving on the meter whatever other
/// sections had recorded before it: for work done outside a request (a scrub) that pays for
/// itself rather than adding to the next request's payment.
pub fn work_of<R>(section: impl FnOnce() -> R) -> (R, Work) {
    let others = take_work();
    let result = section();
    let work = take_work();
    record_work(others);
    (result, work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_takes_only_its_own_work() {
        take_work();
        record_work(Work { reads: 2, ..Work::default() });
        let ((), own) = work_of(|| record_work(Work { reads: 5, read_bytes: 100, ..Work::default() }));
        assert_eq!(own, Work { reads: 5, read_bytes: 100, ..Work::default() });
        assert_eq!(take_work(), Work { reads: 2, ..Work::default() }, "the earlier work is still there");
    }

    #[test]
    fn the_meter_sums_until_taken() {
        take_work();
        record_work(Work { reads: 1, read_bytes: 10, ..Work::default() });
        record_work(Work { writes: 1, write_bytes: 5, syncs: 1, ..Work::default() });
        assert_eq!(take_work(), Work { reads: 1, read_bytes: 10, writes: 1, write_bytes: 5, syncs: 1 });
        assert!(take_work().is_empty());
    }

    #[test]
    fn meters_are_per_thread() {
        take_work();
        record_work(Work { reads: 3, ..Work::default() });
        let other = std::thread::spawn(take_work).join().unwrap();
        assert!(other.is_empty());
        assert_eq!(take_work().reads, 3);
    }
}
