//! YCSB's core workloads (`site.ycsb.workloads.CoreWorkload`): the workload definitions A–F, a
//! parser for YCSB workload property files, and a seeded generator of the operations a YCSB client
//! would issue.
//!
//! Typical use: `YcsbSpec::builtin("workloada")` or `YcsbSpec::from_properties(text)`, then
//! `YcsbWorkload::new(spec, seed)`; run [`YcsbWorkload::load_phase`] to insert the records and
//! [`YcsbWorkload::next_operation`] for the run phase.

mod spec;
#[cfg(test)]
mod tests;
mod workload;

pub use spec::{
    property, FieldLengthDistribution, InsertOrder, RequestDistribution, ScanLengthDistribution, SpecError, YcsbSpec,
    BUILTIN_WORKLOADS, FIELD_COUNT_MAX, FIELD_LENGTH_BYTES_MAX, PROPERTIES_TEXT_BYTES_MAX, RECORD_COUNT_MAX,
    SCAN_LENGTH_MAX, ZERO_PADDING_MAX,
};
pub use workload::{
    random_value, FieldValues, LoadPhase, Operation, OperationKind, YcsbWorkload, KEY_DRAWS_MAX, STREAM_FIELD,
    STREAM_FIELD_LENGTH, STREAM_KEY, STREAM_LOAD_VALUE, STREAM_OPERATION, STREAM_SCAN_LENGTH, STREAM_VALUE,
};
