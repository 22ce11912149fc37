//! A token bucket that may go into debt: the shape of DynamoDB's capacity enforcement.
//!
//! Units flow in at `rate_per_s` and collect up to `burst_s` seconds' worth (DynamoDB keeps up
//! to 300 seconds of unused capacity as burst credit). A request is admitted while capacity is
//! available; what it really consumed is charged afterwards and may take the balance below
//! zero, so a large read that was admitted on a little credit makes later requests wait until
//! the debt is refilled.
//!
//! Time is a value the caller passes in (a `Duration` since any fixed origin); the bucket reads
//! no clock. A time earlier than one already seen adds nothing.

use std::time::Duration;

/// A refilling balance of capacity units.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst_s: f64,
    balance: f64,
    updated: Duration,
}

/// Largest rate, window or request the bucket takes as given; larger ones are cut to it, so
/// that products of two of them stay finite.
const VALUE_MAX: f64 = 1e15;

/// A rate, window or request as a usable number: NaN, infinite and negative values count as
/// zero, so no input can make the balance NaN or refill it backwards.
fn sane(value: f64) -> f64 {
    if value.is_finite() {
        value.clamp(0.0, VALUE_MAX)
    } else {
        0.0
    }
}

impl TokenBucket {
    /// A bucket refilling at `rate_per_s` that holds at most `burst_s` seconds of it, full at
    /// `now`.
    pub fn full(rate_per_s: f64, burst_s: f64, now: Duration) -> TokenBucket {
        let mut bucket =
            TokenBucket { rate_per_s: sane(rate_per_s), burst_s: sane(burst_s), balance: 0.0, updated: now };
        bucket.balance = bucket.capacity();
        bucket
    }

    /// Units added per second.
    pub fn rate_per_s(&self) -> f64 {
        self.rate_per_s
    }

    /// Seconds of unused capacity the bucket keeps.
    pub fn burst_s(&self) -> f64 {
        self.burst_s
    }

    /// The most units the bucket holds: `burst_s` seconds at `rate_per_s`.
    pub fn capacity(&self) -> f64 {
        self.rate_per_s * self.burst_s
    }

    /// Adds what flowed in since the last time seen, up to the capacity.
    fn refill(&mut self, now: Duration) {
        if now <= self.updated {
            return;
        }
        let elapsed_s = (now - self.updated).as_secs_f64();
        let capacity = self.capacity();
        if self.balance < capacity {
            self.balance = (self.balance + elapsed_s * self.rate_per_s).min(capacity);
        }
        self.updated = now;
    }

    /// The balance at `now`: negative while the bucket is in debt.
    pub fn balance(&mut self, now: Duration) -> f64 {
        self.refill(now);
        self.balance
    }

    /// Whether a request needing `units` may start at `now`: the balance is positive and
    /// covers the units. A request larger than the whole bucket needs only a full bucket, or
    /// it could never run.
    pub fn admits(&mut self, now: Duration, units: f64) -> bool {
        self.refill(now);
        let need = sane(units).min(self.capacity());
        self.balance > 0.0 && self.balance >= need
    }

    /// Takes `units` when [`admits`](TokenBucket::admits) allows it; returns whether it did.
    pub fn try_take(&mut self, now: Duration, units: f64) -> bool {
        if !self.admits(now, units) {
            return false;
        }
        self.balance -= sane(units);
        true
    }

    /// Charges `units` after the fact, admitted or not: the balance may go into debt. A
    /// negative charge is a refund, which never fills the bucket past its capacity.
    pub fn charge(&mut self, now: Duration, units: f64) {
        self.refill(now);
        let units = if units.is_finite() { units.clamp(-VALUE_MAX, VALUE_MAX) } else { 0.0 };
        self.balance = (self.balance - units).min(self.capacity());
    }

    /// Changes the rate from `now` on. What flowed in until `now` came at the old rate; the
    /// credit kept is capped at the new capacity, so lowering the rate also lowers the burst.
    pub fn set_rate(&mut self, now: Duration, rate_per_s: f64) {
        self.refill(now);
        self.rate_per_s = sane(rate_per_s);
        self.balance = self.balance.min(self.capacity());
    }

    /// How long from `now` until a request needing `units` would be admitted, if the rate
    /// stays the same and nothing else is taken; `None` when it never would (a zero rate).
    pub fn wait_for(&mut self, now: Duration, units: f64) -> Option<Duration> {
        if self.admits(now, units) {
            return Some(Duration::ZERO);
        }
        if self.rate_per_s <= 0.0 {
            return None;
        }
        let need = sane(units).min(self.capacity());
        // Strictly positive balance is needed too, so aim a hair above `need`.
        let missing = (need - self.balance).max(0.0) + f64::EPSILON * need.max(1.0);
        Some(Duration::from_secs_f64((missing / self.rate_per_s).min(u32::MAX as f64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_refuses() {
        let mut bucket = TokenBucket::full(1.0, 300.0, s(0.0));
        assert_eq!(bucket.capacity(), 300.0);
        for _ in 0..300 {
            assert!(bucket.try_take(s(0.0), 1.0));
        }
        assert!(!bucket.try_take(s(0.0), 1.0));
        assert!(!bucket.try_take(s(0.5), 1.0));
        assert!(bucket.try_take(s(1.0), 1.0));
        assert!(!bucket.try_take(s(1.0), 1.0));
    }

    #[test]
    fn unused_capacity_collects_up_to_the_burst_window() {
        let mut bucket = TokenBucket::full(5.0, 300.0, s(0.0));
        bucket.charge(s(0.0), 1500.0);
        assert_eq!(bucket.balance(s(0.0)), 0.0);
        assert_eq!(bucket.balance(s(10.0)), 50.0);
        assert_eq!(bucket.balance(s(299.0)), 1495.0);
        assert_eq!(bucket.balance(s(10_000.0)), 1500.0);
    }

    #[test]
    fn consumption_charged_afterwards_is_a_debt_that_refill_repays() {
        let mut bucket = TokenBucket::full(2.0, 1.0, s(0.0));
        // Admitted on a small estimate, the request really consumed 20 units.
        assert!(bucket.try_take(s(0.0), 0.5));
        bucket.charge(s(0.0), 19.5);
        assert_eq!(bucket.balance(s(0.0)), -18.0);
        assert!(!bucket.admits(s(9.0), 0.5));
        assert_eq!(bucket.wait_for(s(9.0), 0.5).map(|d| d > Duration::ZERO), Some(true));
        assert!(bucket.admits(s(9.25), 0.5));
        // A refund repays debt too, but never fills past the capacity.
        bucket.charge(s(9.25), -100.0);
        assert_eq!(bucket.balance(s(9.25)), 2.0);
    }

    #[test]
    fn a_request_larger_than_the_bucket_runs_when_the_bucket_is_full() {
        let mut bucket = TokenBucket::full(1.0, 10.0, s(0.0));
        assert!(bucket.try_take(s(0.0), 400.0));
        assert_eq!(bucket.balance(s(0.0)), -390.0);
        assert!(!bucket.admits(s(399.0), 400.0));
        assert!(bucket.admits(s(400.0), 400.0));
    }

    #[test]
    fn a_zero_rate_admits_nothing_and_waits_forever() {
        let mut bucket = TokenBucket::full(0.0, 300.0, s(0.0));
        assert!(!bucket.admits(s(0.0), 0.0));
        assert!(!bucket.admits(s(1e6), 1.0));
        assert_eq!(bucket.wait_for(s(0.0), 1.0), None);
    }

    #[test]
    fn a_new_rate_applies_at_once_and_caps_the_credit_kept() {
        let mut bucket = TokenBucket::full(10.0, 300.0, s(0.0));
        bucket.charge(s(0.0), 3000.0);
        // Ten seconds at the old rate, then the new one.
        bucket.set_rate(s(10.0), 100.0);
        assert_eq!(bucket.balance(s(10.0)), 100.0);
        assert_eq!(bucket.balance(s(11.0)), 200.0);
        // Lowering the rate lowers the capacity, and the credit with it.
        bucket.set_rate(s(20.0), 1.0);
        assert_eq!(bucket.balance(s(20.0)), 300.0);
    }

    #[test]
    fn time_that_runs_backwards_adds_nothing() {
        let mut bucket = TokenBucket::full(1.0, 10.0, s(100.0));
        bucket.charge(s(100.0), 10.0);
        assert_eq!(bucket.balance(s(50.0)), 0.0);
        assert_eq!(bucket.balance(s(100.0)), 0.0);
        assert_eq!(bucket.balance(s(101.0)), 1.0);
    }

    #[test]
    fn nonsense_numbers_cannot_poison_the_balance() {
        let bucket = TokenBucket::full(f64::NAN, -3.0, s(0.0));
        assert_eq!(bucket.capacity(), 0.0);
        let mut bucket = TokenBucket::full(1.0, 10.0, s(0.0));
        bucket.charge(s(0.0), f64::NAN);
        bucket.charge(s(0.0), f64::INFINITY);
        assert!(bucket.try_take(s(0.0), f64::NAN));
        assert_eq!(bucket.balance(s(0.0)), 10.0);
        let mut huge = TokenBucket::full(f64::MAX, f64::MAX, s(0.0));
        assert!(huge.capacity().is_finite());
        assert!(huge.try_take(s(1.0), 1e300));
    }

    /// One step of a random schedule.
    #[derive(Clone, Debug)]
    enum Step {
        Advance(f64),
        Take(f64),
        Charge(f64),
        Rate(f64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0.0f64..20.0).prop_map(Step::Advance),
            (0.0f64..500.0).prop_map(Step::Take),
            (-200.0f64..500.0).prop_map(Step::Charge),
            (0.0f64..100.0).prop_map(Step::Rate),
        ]
    }

    proptest! {
        #[test]
        fn the_balance_never_exceeds_the_capacity(
            rate in 0.0f64..100.0, burst in 0.1f64..400.0, steps in proptest::collection::vec(step(), 1..200)
        ) {
            let mut now = 0.0;
            let mut bucket = TokenBucket::full(rate, burst, s(now));
            for step in steps {
                match step {
                    Step::Advance(dt) => now += dt,
                    Step::Take(units) => { bucket.try_take(s(now), units); }
                    Step::Charge(units) => bucket.charge(s(now), units),
                    Step::Rate(rate) => bucket.set_rate(s(now), rate),
                }
                let capacity = bucket.capacity();
                let balance = bucket.balance(s(now));
                prop_assert!(balance.is_finite());
                prop_assert!(balance <= capacity + 1e-9, "balance {balance} over capacity {capacity}");
            }
        }

        #[test]
        fn admissions_never_outrun_the_rate_plus_the_burst(
            rate in 0.1f64..100.0,
            burst in 0.1f64..300.0,
            requests in proptest::collection::vec((0.0f64..5.0, 0.0f64..400.0), 1..300)
        ) {
            let mut now = 0.0;
            let mut bucket = TokenBucket::full(rate, burst, s(now));
            let mut taken = 0.0;
            let mut largest: f64 = 0.0;
            for (dt, units) in requests {
                now += dt;
                largest = largest.max(units);
                if bucket.try_take(s(now), units) {
                    taken += units;
                }
            }
            // Everything admitted came from the initial burst, the refill since, and at most one
            // request's excess over a full bucket (the debt it left is never refilled twice).
            let capacity = bucket.capacity();
            let bound = capacity + rate * now + (largest - capacity).max(0.0);
            prop_assert!(taken <= bound + 1e-6, "took {taken} against a bound of {bound}");
        }

        #[test]
        fn waiting_as_told_is_enough(
            rate in 0.1f64..100.0, burst in 0.1f64..300.0, debt in 0.0f64..10_000.0, units in 0.0f64..1_000.0
        ) {
            let mut bucket = TokenBucket::full(rate, burst, s(0.0));
            bucket.charge(s(0.0), bucket.capacity() + debt);
            let wait = bucket.wait_for(s(0.0), units).expect("a positive rate always admits eventually");
            prop_assert!(bucket.admits(s(0.0) + wait + Duration::from_millis(1), units));
        }

        #[test]
        fn refill_is_linear_until_full(rate in 0.0f64..100.0, burst in 0.1f64..300.0, spent in 0.0f64..1.0, dt in 0.0f64..1_000.0) {
            let mut bucket = TokenBucket::full(rate, burst, s(0.0));
            let capacity = bucket.capacity();
            bucket.charge(s(0.0), capacity * spent);
            let before = bucket.balance(s(0.0));
            let after = bucket.balance(s(dt));
            let expected = (before + rate * s(dt).as_secs_f64()).min(capacity);
            prop_assert!((after - expected).abs() <= 1e-6 * capacity.max(1.0), "{after} != {expected}");
        }

        #[test]
        fn a_rate_change_never_adds_credit(rate in 0.0f64..100.0, new_rate in 0.0f64..100.0, burst in 0.1f64..300.0, spent in 0.0f64..1.0) {
            let mut bucket = TokenBucket::full(rate, burst, s(0.0));
            bucket.charge(s(0.0), bucket.capacity() * spent);
            let before = bucket.balance(s(0.0));
            bucket.set_rate(s(0.0), new_rate);
            prop_assert!(bucket.balance(s(0.0)) <= before);
            prop_assert!(bucket.balance(s(0.0)) <= bucket.capacity());
        }
    }
}
