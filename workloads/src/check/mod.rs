//! Pure checkers of a run's recorded history: given what clients asked and saw, decide whether the
//! store kept its promises. Nothing here does I/O or reads a clock, so the simulator, a real-mode
//! run and the unit tests call the same functions.
//!
//! - [`history`]: the recorded history of register operations per key (serde), and the register's
//!   sequential specification.
//! - [`linearizability`]: per-key linearizability (Wing–Gong/Lowe search with memoisation,
//!   partitioned by key as Porcupine does), bounded by a step limit that yields `Unknown`.
//! - [`lost_writes`]: every acknowledged write still visible (or overwritten by a write that may
//!   follow it) in the final state read after faults heal.
//! - [`bank`]: the total of all balances is the same in every strongly consistent snapshot.

pub mod bank;
pub mod history;
pub mod linearizability;
pub mod lost_writes;

pub use bank::{check_bank, BankSnapshot, BankViolation};
pub use history::{
    ClientId, Completion, Failure, History, HistoryError, Input, Key, OpIndex, Operation, Outcome, Output, Value,
};
pub use linearizability::{check, check_key, KeyVerdict, Limits, Report, Violation, DEFAULT_MAX_STEPS_PER_KEY};
pub use lost_writes::{check_lost_writes, LostWrite, LostWritesReport};

#[cfg(test)]
mod tests;
