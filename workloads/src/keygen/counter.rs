//! Key-number counters for inserts: YCSB's `CounterGenerator` (load phase) and
//! `AcknowledgedCounterGenerator` (inserts during the run phase).

use std::collections::BTreeSet;

/// Most inserts that may be handed out ahead of the oldest unacknowledged one: YCSB's
/// `AcknowledgedCounterGenerator.WINDOW_SIZE` (2^20).
pub const ACKNOWLEDGE_WINDOW_SIZE: u64 = 1 << 20;

/// Hands out consecutive key numbers from a start value.
#[derive(Debug, Clone)]
pub struct CounterGenerator {
    next: u64,
}

impl CounterGenerator {
    /// A counter whose first value is `start`.
    pub fn new(start: u64) -> Self {
        Self { next: start }
    }

    /// The next value (YCSB's `getAndIncrement`).
    pub fn next_value(&mut self) -> u64 {
        let value = self.next;
        self.next += 1;
        value
    }

    /// The last value handed out, `None` before the first one below `start` exists (YCSB's
    /// `counter - 1`).
    pub fn last_value(&self) -> Option<u64> {
        self.next.checked_sub(1)
    }
}

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcknowledgeError {
    /// The value was never handed out by this counter.
    #[error("key number {0} was never handed out")]
    NotIssued(u64),
    /// The value was acknowledged before.
    #[error("key number {0} was already acknowledged")]
    AlreadyAcknowledged(u64),
    /// Too many inserts are outstanding below this one (YCSB: "Too many unacknowledged insertion
    /// keys").
    #[error("key number {0} is {ACKNOWLEDGE_WINDOW_SIZE} or more past the oldest unacknowledged insert")]
    WindowFull(u64),
}

/// YCSB's `AcknowledgedCounterGenerator`: inserts take consecutive key numbers, but readers only see
/// key numbers up to the highest one below which every insert has been acknowledged (`limit`), so a
/// read never targets a record whose insert is still in flight.
///
/// YCSB acknowledges an insert whether or not it succeeded; callers should do the same.
#[derive(Debug, Clone)]
pub struct AcknowledgedCounterGenerator {
    counter: CounterGenerator,
    /// Highest key number with every key number up to it acknowledged (or present from the load).
    limit: Option<u64>,
    /// Acknowledged key numbers above `limit + 1`, waiting for the gap below them to close. Bounded
    /// by the window size.
    pending: BTreeSet<u64>,
}

impl AcknowledgedCounterGenerator {
    /// A counter whose first value is `start`; key numbers below `start` count as present (they are
    /// the loaded records).
    pub fn new(start: u64) -> Self {
        Self { counter: CounterGenerator::new(start), limit: start.checked_sub(1), pending: BTreeSet::new() }
    }

    /// The next key number for an insert.
    pub fn next_value(&mut self) -> u64 {
        self.counter.next_value()
    }

    /// The highest key number readers may use (YCSB's `lastValue()` = `limit`); `None` when there
    /// is no record at all.
    pub fn last_value(&self) -> Option<u64> {
        self.limit
    }

    /// Marks the insert of `value` as finished and advances the limit over every contiguous
    /// acknowledged key number.
    pub fn acknowledge(&mut self, value: u64) -> Result<(), AcknowledgeError> {
        if self.counter.last_value().is_none_or(|last| value > last) {
            return Err(AcknowledgeError::NotIssued(value));
        }
        let first_open = self.limit.map_or(0, |limit| limit + 1);
        if value < first_open || self.pending.contains(&value) {
            return Err(AcknowledgeError::AlreadyAcknowledged(value));
        }
        if value - first_open >= ACKNOWLEDGE_WINDOW_SIZE {
            return Err(AcknowledgeError::WindowFull(value));
        }
        self.pending.insert(value);
        let mut next_open = first_open;
        while self.pending.first() == Some(&next_open) {
            self.pending.pop_first();
            next_open += 1;
        }
        self.limit = next_open.checked_sub(1);
        debug_assert!(self.pending.first().is_none_or(|&first| first > next_open));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_counts_from_start() {
        let mut counter = CounterGenerator::new(5);
        assert_eq!(counter.last_value(), Some(4));
        assert_eq!(counter.next_value(), 5);
        assert_eq!(counter.next_value(), 6);
        assert_eq!(counter.last_value(), Some(6));
        assert_eq!(CounterGenerator::new(0).last_value(), None);
    }

    #[test]
    fn acknowledged_counter_limit_waits_for_gaps() {
        let mut counter = AcknowledgedCounterGenerator::new(100);
        assert_eq!(counter.last_value(), Some(99));
        let (a, b, c) = (counter.next_value(), counter.next_value(), counter.next_value());
        assert_eq!((a, b, c), (100, 101, 102));
        counter.acknowledge(c).unwrap();
        assert_eq!(counter.last_value(), Some(99), "102 is acknowledged but 100 and 101 are not");
        counter.acknowledge(a).unwrap();
        assert_eq!(counter.last_value(), Some(100));
        counter.acknowledge(b).unwrap();
        assert_eq!(counter.last_value(), Some(102));
    }

    #[test]
    fn acknowledged_counter_refuses_bad_acknowledgements() {
        let mut counter = AcknowledgedCounterGenerator::new(0);
        assert_eq!(counter.last_value(), None);
        assert_eq!(counter.acknowledge(0), Err(AcknowledgeError::NotIssued(0)));
        let first = counter.next_value();
        counter.acknowledge(first).unwrap();
        assert_eq!(counter.last_value(), Some(0));
        assert_eq!(counter.acknowledge(first), Err(AcknowledgeError::AlreadyAcknowledged(0)));
        let _ = counter.next_value();
        let second = counter.next_value();
        counter.acknowledge(second).unwrap();
        assert_eq!(counter.acknowledge(second), Err(AcknowledgeError::AlreadyAcknowledged(2)));
    }

    #[test]
    fn acknowledged_counter_window_is_bounded() {
        let mut counter = AcknowledgedCounterGenerator::new(0);
        for _ in 0..=ACKNOWLEDGE_WINDOW_SIZE {
            counter.next_value();
        }
        assert_eq!(
            counter.acknowledge(ACKNOWLEDGE_WINDOW_SIZE),
            Err(AcknowledgeError::WindowFull(ACKNOWLEDGE_WINDOW_SIZE))
        );
        counter.acknowledge(ACKNOWLEDGE_WINDOW_SIZE - 1).unwrap();
        assert_eq!(counter.last_value(), None);
    }
}
