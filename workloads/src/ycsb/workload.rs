//! The seeded YCSB operation generator (`CoreWorkload.doTransaction*` and `doInsert`).

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;

use super::spec::{
    FieldLengthDistribution, InsertOrder, RequestDistribution, ScanLengthDistribution, SpecError, YcsbSpec,
    RECORD_COUNT_MAX,
};
use crate::keygen::{
    key_name, next_f64, next_u32, seeded_rng, uniform_below, AcknowledgeError, AcknowledgedCounterGenerator,
    HotspotIntegerGenerator, ScanLengthGenerator, ScrambledZipfianGenerator, SkewedLatestGenerator, UniformGenerator,
    ZipfianGenerator,
};

/// RNG stream that chooses the operation type.
pub const STREAM_OPERATION: u64 = 1;
/// RNG stream that chooses the key of reads, updates, scans and read-modify-writes.
pub const STREAM_KEY: u64 = 2;
/// RNG stream that chooses the single field read or written when not all fields are.
pub const STREAM_FIELD: u64 = 3;
/// RNG stream that chooses field value lengths (unused when they are constant).
pub const STREAM_FIELD_LENGTH: u64 = 4;
/// RNG stream that chooses scan lengths.
pub const STREAM_SCAN_LENGTH: u64 = 5;
/// RNG stream of the value bytes written in the run phase.
pub const STREAM_VALUE: u64 = 6;
/// RNG stream of the value bytes (and lengths) written in the load phase.
pub const STREAM_LOAD_VALUE: u64 = 7;

/// Most key draws for one operation. YCSB redraws without limit while the zipfian chooser picks a
/// key number not inserted yet; the zipfian key space is at most about twice the expected key
/// count, so this is never reached with a consistent spec. If it is, the key is drawn uniformly
/// among the existing ones instead.
pub const KEY_DRAWS_MAX: u32 = 1_000_000;

/// Bytes per 32-bit random draw in YCSB's `RandomByteIterator`.
const VALUE_BYTES_PER_DRAW: usize = 6;

/// Field name → value. Values are ASCII text (see [`random_value`]).
pub type FieldValues = BTreeMap<String, String>;

/// The five operation types of YCSB's core workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperationKind {
    /// Read one record.
    Read,
    /// Update one record.
    Update,
    /// Insert a new record.
    Insert,
    /// Read records in key order from a start key.
    Scan,
    /// Read a record, then update it.
    ReadModifyWrite,
}

impl OperationKind {
    /// YCSB's measurement name of the operation type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Update => "UPDATE",
            Self::Insert => "INSERT",
            Self::Scan => "SCAN",
            Self::ReadModifyWrite => "READ-MODIFY-WRITE",
        }
    }
}

/// One operation to issue against the table of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Read `key`; `fields: None` means every field.
    Read {
        /// Record key.
        key: String,
        /// Fields to read, `None` for all.
        fields: Option<Vec<String>>,
    },
    /// Overwrite the given fields of `key`.
    Update {
        /// Record key.
        key: String,
        /// New field values.
        values: FieldValues,
    },
    /// Insert a new record. Run-phase inserts must be acknowledged with
    /// [`YcsbWorkload::acknowledge_insert`] once they finished (successfully or not, as YCSB does),
    /// so that later reads may target the key.
    Insert {
        /// Record key.
        key: String,
        /// The key number the key was built from.
        key_number: u64,
        /// Every field's value.
        values: FieldValues,
    },
    /// Read up to `count` records in key order starting at `start_key`.
    Scan {
        /// First key.
        start_key: String,
        /// Number of records to read.
        count: u64,
        /// Fields to read, `None` for all.
        fields: Option<Vec<String>>,
    },
    /// Read `key` (the given fields), then write `values` to it.
    ReadModifyWrite {
        /// Record key.
        key: String,
        /// Fields to read, `None` for all.
        fields: Option<Vec<String>>,
        /// New field values.
        values: FieldValues,
    },
}

impl Operation {
    /// The operation's type.
    pub fn kind(&self) -> OperationKind {
        match self {
            Self::Read { .. } => OperationKind::Read,
            Self::Update { .. } => OperationKind::Update,
            Self::Insert { .. } => OperationKind::Insert,
            Self::Scan { .. } => OperationKind::Scan,
            Self::ReadModifyWrite { .. } => OperationKind::ReadModifyWrite,
        }
    }
}

/// How keys of existing records are chosen (`CoreWorkload.keychooser`).
#[derive(Debug, Clone)]
enum KeyChooser {
    Uniform(UniformGenerator),
    Zipfian(ScrambledZipfianGenerator),
    Latest(SkewedLatestGenerator),
    Hotspot(HotspotIntegerGenerator),
}

/// How field value lengths are chosen (`CoreWorkload.fieldlengthgenerator`).
#[derive(Debug, Clone)]
enum FieldLength {
    Constant(u64),
    Uniform(UniformGenerator),
    Zipfian(ZipfianGenerator),
}

impl FieldLength {
    fn new(spec: &YcsbSpec) -> Self {
        match spec.field_length_distribution {
            FieldLengthDistribution::Constant => Self::Constant(spec.field_length),
            FieldLengthDistribution::Uniform => Self::Uniform(UniformGenerator::new(1, spec.field_length)),
            FieldLengthDistribution::Zipfian => Self::Zipfian(ZipfianGenerator::new(1, spec.field_length)),
        }
    }

    fn next_value(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            Self::Constant(length) => *length,
            Self::Uniform(uniform) => uniform.next_value(rng),
            Self::Zipfian(zipfian) => zipfian.next_value(rng),
        }
    }
}

/// A value of `length` bytes the way YCSB's `RandomByteIterator` makes them: each 32-bit draw
/// gives up to 6 bytes, `' ' + ((bits >> s) & m)` for (s, m) = (0, 31), (5, 63), (10, 95),
/// (15, 31), (20, 63), (25, 95); the last draw of a value gives only the bytes still needed.
///
/// The bytes lie in 0x20..=0x7F: printable ASCII, except that the masks of 95 can give 0x7F (DEL),
/// as in YCSB.
pub fn random_value(rng: &mut ChaCha8Rng, length: u64) -> String {
    let length = usize::try_from(length).expect("field lengths are bounded by FIELD_LENGTH_BYTES_MAX");
    let mut value = String::with_capacity(length);
    while value.len() < length {
        let take = (length - value.len()).min(VALUE_BYTES_PER_DRAW);
        push_value_bytes(&mut value, next_u32(rng), take);
    }
    debug_assert!(value.bytes().all(|byte| (0x20..=0x7f).contains(&byte)));
    value
}

/// Appends the first `take` (at most 6) bytes that one 32-bit draw gives.
fn push_value_bytes(value: &mut String, bits: u32, take: usize) {
    const SHIFTS_AND_MASKS: [(u32, u32); VALUE_BYTES_PER_DRAW] =
        [(0, 31), (5, 63), (10, 95), (15, 31), (20, 63), (25, 95)];
    for &(shift, mask) in &SHIFTS_AND_MASKS[..take] {
        // At most 0x20 + 95 = 0x7F: always one ASCII byte.
        value.push(char::from(b' ' + ((bits >> shift) & mask) as u8));
    }
}

/// The generator of a YCSB client's operations: every choice comes from ChaCha8 streams of one
/// seed (one stream per kind of choice, see `STREAM_*`), so a seed gives one operation sequence.
#[derive(Debug, Clone)]
pub struct YcsbWorkload {
    spec: YcsbSpec,
    seed: u64,
    field_names: Vec<String>,
    /// Operation types with their shares, in YCSB's order (read, update, insert, scan,
    /// read-modify-write), only those with a share above 0.
    operation_weights: Vec<(OperationKind, f64)>,
    key_chooser: KeyChooser,
    field_chooser: UniformGenerator,
    field_length: FieldLength,
    scan_length: ScanLengthGenerator,
    insert_sequence: AcknowledgedCounterGenerator,
    operation_rng: ChaCha8Rng,
    key_rng: ChaCha8Rng,
    field_rng: ChaCha8Rng,
    field_length_rng: ChaCha8Rng,
    scan_length_rng: ChaCha8Rng,
    value_rng: ChaCha8Rng,
}

impl YcsbWorkload {
    /// Sets up the generators as `CoreWorkload.init` does. Validates the spec first.
    ///
    /// With the zipfian or latest distribution this sums ζ over the record count (linear in the
    /// record count).
    pub fn new(spec: YcsbSpec, seed: u64) -> Result<Self, SpecError> {
        spec.validate()?;
        let field_names = (0..spec.field_count).map(|i| format!("{}{i}", spec.field_name_prefix)).collect();
        let operation_weights: Vec<(OperationKind, f64)> = [
            (OperationKind::Read, spec.read_proportion),
            (OperationKind::Update, spec.update_proportion),
            (OperationKind::Insert, spec.insert_proportion),
            (OperationKind::Scan, spec.scan_proportion),
            (OperationKind::ReadModifyWrite, spec.read_modify_write_proportion),
        ]
        .into_iter()
        .filter(|&(_, weight)| weight > 0.0)
        .collect();
        let insert_start = spec.insert_start;
        // Validation guarantees at least one record when keys are chosen; otherwise the chooser is
        // never used and a one-key range stands in.
        let insert_count = spec.effective_insert_count().max(1);
        let insert_sequence = AcknowledgedCounterGenerator::new(spec.record_count);
        let key_chooser = match spec.request_distribution {
            RequestDistribution::Uniform => {
                KeyChooser::Uniform(UniformGenerator::new(insert_start, insert_start + insert_count - 1))
            }
            RequestDistribution::Zipfian => {
                // YCSB sizes the scrambled zipfian's range for the inserts it expects (twice the
                // expected number, "fudge factor"), so that key popularity does not shift as the
                // table grows; key numbers not inserted yet are redrawn. Note the inclusive upper
                // end: YCSB's range holds insertcount + expectednewkeys + 1 keys.
                // Capped at RECORD_COUNT_MAX so that the range cannot overflow (YCSB computes it
                // in a Java int and would overflow much earlier).
                let expected_new_keys =
                    ((spec.operation_count as f64 * spec.insert_proportion * 2.0) as u64).min(RECORD_COUNT_MAX);
                KeyChooser::Zipfian(ScrambledZipfianGenerator::new(
                    insert_start,
                    insert_start + insert_count + expected_new_keys,
                ))
            }
            RequestDistribution::Latest => {
                KeyChooser::Latest(SkewedLatestGenerator::new(insert_sequence.last_value().unwrap_or(0)))
            }
            RequestDistribution::Hotspot => KeyChooser::Hotspot(HotspotIntegerGenerator::new(
                insert_start,
                insert_start + insert_count - 1,
                spec.hotspot_data_fraction,
                spec.hotspot_operation_fraction,
            )),
        };
        let scan_length = match spec.scan_length_distribution {
            ScanLengthDistribution::Uniform => ScanLengthGenerator::uniform(spec.min_scan_length, spec.max_scan_length),
            ScanLengthDistribution::Zipfian => ScanLengthGenerator::zipfian(spec.min_scan_length, spec.max_scan_length),
        };
        Ok(Self {
            field_chooser: UniformGenerator::new(0, spec.field_count - 1),
            field_length: FieldLength::new(&spec),
            scan_length,
            field_names,
            operation_weights,
            key_chooser,
            insert_sequence,
            operation_rng: seeded_rng(seed, STREAM_OPERATION),
            key_rng: seeded_rng(seed, STREAM_KEY),
            field_rng: seeded_rng(seed, STREAM_FIELD),
            field_length_rng: seeded_rng(seed, STREAM_FIELD_LENGTH),
            scan_length_rng: seeded_rng(seed, STREAM_SCAN_LENGTH),
            value_rng: seeded_rng(seed, STREAM_VALUE),
            spec,
            seed,
        })
    }

    /// The spec this workload runs.
    pub fn spec(&self) -> &YcsbSpec {
        &self.spec
    }

    /// Field names, `field0`..`field{n-1}`.
    pub fn field_names(&self) -> &[String] {
        &self.field_names
    }

    /// The key name of key number `key_number` under this spec's insert order and padding.
    pub fn key(&self, key_number: u64) -> String {
        key_name(key_number, self.spec.insert_order == InsertOrder::Hashed, self.spec.zero_padding)
    }

    /// The load phase: inserts of key numbers insertstart..insertstart+insertcount in order, with
    /// values from their own RNG stream (so the run phase is the same whether or not the load ran).
    pub fn load_phase(&self) -> LoadPhase {
        LoadPhase {
            next: self.spec.insert_start,
            end: self.spec.insert_start + self.spec.effective_insert_count(),
            hashed: self.spec.insert_order == InsertOrder::Hashed,
            zero_padding: self.spec.zero_padding,
            field_names: self.field_names.clone(),
            field_length: FieldLength::new(&self.spec),
            rng: seeded_rng(self.seed, STREAM_LOAD_VALUE),
        }
    }

    /// The highest key number reads may target now: recordcount − 1 plus every run-phase insert
    /// acknowledged without gaps. `None` when there is no record.
    pub fn latest_key_number(&self) -> Option<u64> {
        self.insert_sequence.last_value()
    }

    /// Marks a run-phase insert as finished (YCSB acknowledges in a `finally`, whatever the
    /// outcome), which lets reads target its key once all earlier inserts finished too.
    pub fn acknowledge_insert(&mut self, key_number: u64) -> Result<(), AcknowledgeError> {
        self.insert_sequence.acknowledge(key_number)
    }

    /// The next run-phase operation (`CoreWorkload.doTransaction`).
    pub fn next_operation(&mut self) -> Operation {
        match self.next_kind() {
            OperationKind::Read => {
                let key = self.next_existing_key();
                Operation::Read { key, fields: self.fields_to_read() }
            }
            OperationKind::Update => {
                let key = self.next_existing_key();
                Operation::Update { key, values: self.values_to_write() }
            }
            OperationKind::Insert => {
                let key_number = self.insert_sequence.next_value();
                let values = self.all_values();
                Operation::Insert { key: self.key(key_number), key_number, values }
            }
            OperationKind::Scan => {
                let start_key = self.next_existing_key();
                let count = self.scan_length.next_value(&mut self.scan_length_rng);
                Operation::Scan { start_key, count, fields: self.fields_to_read() }
            }
            OperationKind::ReadModifyWrite => {
                let key = self.next_existing_key();
                let fields = self.fields_to_read();
                Operation::ReadModifyWrite { key, fields, values: self.values_to_write() }
            }
        }
    }

    /// YCSB's `DiscreteGenerator`: shares normalised by their sum, one uniform draw walked down
    /// the list.
    fn next_kind(&mut self) -> OperationKind {
        let total: f64 = self.operation_weights.iter().map(|&(_, weight)| weight).sum();
        let mut u = next_f64(&mut self.operation_rng);
        for &(kind, weight) in &self.operation_weights {
            let share = weight / total;
            if u < share {
                return kind;
            }
            u -= share;
        }
        // Rounding can leave u a hair above the last share; YCSB would throw here.
        self.operation_weights.last().map(|&(kind, _)| kind).expect("validation requires one share above 0")
    }

    /// `CoreWorkload.nextKeynum`: a key number from the chooser, redrawn while it is beyond the
    /// latest acknowledged insert. YCSB truncates key numbers to a Java int here; key numbers stay
    /// 64-bit.
    fn next_existing_key(&mut self) -> String {
        let limit = self.insert_sequence.last_value().expect("validation requires records before keys are chosen");
        let rng = &mut self.key_rng;
        let key_number = match &mut self.key_chooser {
            KeyChooser::Latest(latest) => latest.next_value(rng, limit),
            chooser => (0..KEY_DRAWS_MAX)
                .map(|_| match chooser {
                    KeyChooser::Uniform(uniform) => uniform.next_value(rng),
                    KeyChooser::Zipfian(zipfian) => zipfian.next_value(rng),
                    KeyChooser::Hotspot(hotspot) => hotspot.next_value(rng),
                    KeyChooser::Latest(_) => unreachable!("handled above"),
                })
                .find(|&key_number| key_number <= limit)
                .unwrap_or_else(|| {
                    let start = self.spec.insert_start.min(limit);
                    start + uniform_below(rng, limit - start + 1)
                }),
        };
        debug_assert!(key_number <= limit);
        self.key(key_number)
    }

    /// `None` (all fields) when readallfields, else one random field.
    fn fields_to_read(&mut self) -> Option<Vec<String>> {
        if self.spec.read_all_fields {
            None
        } else {
            Some(vec![self.random_field_name()])
        }
    }

    /// Every field when writeallfields, else one random field (`buildSingleValue`).
    fn values_to_write(&mut self) -> FieldValues {
        if self.spec.write_all_fields {
            self.all_values()
        } else {
            let field = self.random_field_name();
            let length = self.field_length.next_value(&mut self.field_length_rng);
            FieldValues::from([(field, random_value(&mut self.value_rng, length))])
        }
    }

    /// `buildValues`: every field, in field order.
    fn all_values(&mut self) -> FieldValues {
        self.field_names
            .iter()
            .map(|name| {
                let length = self.field_length.next_value(&mut self.field_length_rng);
                (name.clone(), random_value(&mut self.value_rng, length))
            })
            .collect()
    }

    fn random_field_name(&mut self) -> String {
        let index = self.field_chooser.next_value(&mut self.field_rng);
        self.field_names[index as usize].clone()
    }
}

/// The load phase's inserts (`CoreWorkload.doInsert` with a `CounterGenerator` from insertstart).
#[derive(Debug, Clone)]
pub struct LoadPhase {
    next: u64,
    end: u64,
    hashed: bool,
    zero_padding: usize,
    field_names: Vec<String>,
    field_length: FieldLength,
    rng: ChaCha8Rng,
}

impl Iterator for LoadPhase {
    type Item = Operation;

    fn next(&mut self) -> Option<Operation> {
        if self.next >= self.end {
            return None;
        }
        let key_number = self.next;
        self.next += 1;
        let values = self
            .field_names
            .iter()
            .map(|name| {
                let length = self.field_length.next_value(&mut self.rng);
                (name.clone(), random_value(&mut self.rng, length))
            })
            .collect();
        Some(Operation::Insert { key: key_name(key_number, self.hashed, self.zero_padding), key_number, values })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end - self.next).ok();
        (left.unwrap_or(usize::MAX), left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of one draw computed by hand from YCSB's shifts and masks.
    #[test]
    fn value_bytes_follow_ycsb_masks() {
        let mut value = String::new();
        push_value_bytes(&mut value, 0, 6);
        assert_eq!(value, "      ");
        value.clear();
        // All ones: 31 → '?', 63 → '_', 95 → 0x7F.
        push_value_bytes(&mut value, u32::MAX, 6);
        assert_eq!(value.as_bytes(), b"?_\x7f?_\x7f");
        value.clear();
        // YCSB's bit fields overlap: bits 5..=10 feed the second byte and bits 10.. the third.
        // 1 | 2 << 5 | 3 << 10 = 3137: 3137 & 31 = 1 → '!'; (3137 >> 5) & 63 = 98 & 63 = 34 → 'B';
        // (3137 >> 10) & 95 = 3 → '#'.
        push_value_bytes(&mut value, 1 | (2 << 5) | (3 << 10), 3);
        assert_eq!(value, "!B#");
    }

    #[test]
    fn random_values_have_the_length_asked_for() {
        let mut rng = seeded_rng(9, STREAM_VALUE);
        for length in [0u64, 1, 5, 6, 7, 100, 1000] {
            let value = random_value(&mut rng, length);
            assert_eq!(value.len() as u64, length);
            assert!(value.bytes().all(|byte| (0x20..=0x7f).contains(&byte)));
        }
    }
}
