//! The YCSB workload specification and its property-file format.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Most fields per record. DynamoDB items are limited to 400 KB, so more fields than this would
/// only be useful with tiny values; the bound keeps a typo from allocating millions of names.
pub const FIELD_COUNT_MAX: u64 = 1_000;

/// Longest field value, in bytes: DynamoDB's item size limit (400 KB).
pub const FIELD_LENGTH_BYTES_MAX: u64 = 400 * 1024;

/// Longest scan, in records.
pub const SCAN_LENGTH_MAX: u64 = 1_000_000;

/// Most records: YCSB's scrambled zipfian item space (10^10). The zipfian and "latest" generators
/// sum ζ over the record count at start-up, so the bound also bounds that work.
pub const RECORD_COUNT_MAX: u64 = 10_000_000_000;

/// Widest zero padding of key numbers, in digits (a u64 has at most 20).
pub const ZERO_PADDING_MAX: usize = 64;

/// Largest property text accepted, in bytes; workload files are a few hundred bytes.
pub const PROPERTIES_TEXT_BYTES_MAX: usize = 1024 * 1024;

/// The built-in workload names, YCSB's published `workloads/workloada` .. `workloadf`.
pub const BUILTIN_WORKLOADS: [&str; 6] = ["workloada", "workloadb", "workloadc", "workloadd", "workloade", "workloadf"];

/// YCSB's property names, as they appear in workload files.
pub mod property {
    /// Name of the table (`usertable` by default).
    pub const TABLE: &str = "table";
    /// Records loaded before the run phase.
    pub const RECORD_COUNT: &str = "recordcount";
    /// Operations of the run phase.
    pub const OPERATION_COUNT: &str = "operationcount";
    /// First key number this client loads (to split a load across clients).
    pub const INSERT_START: &str = "insertstart";
    /// Number of records this client loads (default: recordcount − insertstart).
    pub const INSERT_COUNT: &str = "insertcount";
    /// Share of reads.
    pub const READ_PROPORTION: &str = "readproportion";
    /// Share of updates.
    pub const UPDATE_PROPORTION: &str = "updateproportion";
    /// Share of inserts.
    pub const INSERT_PROPORTION: &str = "insertproportion";
    /// Share of scans.
    pub const SCAN_PROPORTION: &str = "scanproportion";
    /// Share of read-modify-writes.
    pub const READ_MODIFY_WRITE_PROPORTION: &str = "readmodifywriteproportion";
    /// Key popularity: uniform, zipfian, latest or hotspot.
    pub const REQUEST_DISTRIBUTION: &str = "requestdistribution";
    /// Fields per record.
    pub const FIELD_COUNT: &str = "fieldcount";
    /// Bytes per field value (the maximum when the length distribution is not constant).
    pub const FIELD_LENGTH: &str = "fieldlength";
    /// Field lengths: constant, uniform or zipfian.
    pub const FIELD_LENGTH_DISTRIBUTION: &str = "fieldlengthdistribution";
    /// Prefix of field names (`field`).
    pub const FIELD_NAME_PREFIX: &str = "fieldnameprefix";
    /// Shortest scan.
    pub const MIN_SCAN_LENGTH: &str = "minscanlength";
    /// Longest scan.
    pub const MAX_SCAN_LENGTH: &str = "maxscanlength";
    /// Scan lengths: uniform or zipfian.
    pub const SCAN_LENGTH_DISTRIBUTION: &str = "scanlengthdistribution";
    /// Key order: hashed or ordered.
    pub const INSERT_ORDER: &str = "insertorder";
    /// Digits to zero-pad key numbers to.
    pub const ZERO_PADDING: &str = "zeropadding";
    /// Share of records in the hot set.
    pub const HOTSPOT_DATA_FRACTION: &str = "hotspotdatafraction";
    /// Share of operations that go to the hot set.
    pub const HOTSPOT_OPERATION_FRACTION: &str = "hotspotopnfraction";
    /// Whether reads fetch every field (else one random field).
    pub const READ_ALL_FIELDS: &str = "readallfields";
    /// Whether updates write every field (else one random field).
    pub const WRITE_ALL_FIELDS: &str = "writeallfields";
    /// The workload class; only YCSB's CoreWorkload is reproduced.
    pub const WORKLOAD: &str = "workload";
}

/// Workload classes accepted for the `workload` property (CoreWorkload under YCSB's old and new
/// package names).
const CORE_WORKLOAD_CLASSES: [&str; 2] = ["site.ycsb.workloads.CoreWorkload", "com.yahoo.ycsb.workloads.CoreWorkload"];

/// How keys are chosen for reads, updates, scans and read-modify-writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDistribution {
    /// Every loaded key equally likely.
    Uniform,
    /// Scrambled zipfian (θ = 0.99): a few keys, scattered over the key space, are very popular.
    Zipfian,
    /// Zipfian by recency: the most recently inserted keys are the most popular.
    Latest,
    /// A hot set at the start of the key range takes a fixed share of the operations.
    Hotspot,
}

/// How scan lengths are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanLengthDistribution {
    /// Uniform over minscanlength..=maxscanlength.
    Uniform,
    /// Zipfian over the same range (short scans most likely).
    Zipfian,
}

/// How field value lengths are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldLengthDistribution {
    /// Every value is exactly `fieldlength` bytes.
    Constant,
    /// Uniform over 1..=fieldlength.
    Uniform,
    /// Zipfian over 1..=fieldlength.
    Zipfian,
}

/// How key numbers become key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOrder {
    /// `user` + fnvhash64(key number): inserts land all over the key space.
    Hashed,
    /// `user` + key number: inserts in key order.
    Ordered,
}

/// A parse or validation error, with the property-file line where there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A line that is neither blank, a comment nor `name=value`.
    #[error("line {line}: expected `name=value`, found {text:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A known property with a value it cannot take.
    #[error("{location}property {name}: invalid value {value:?}: {reason}")]
    BadValue {
        /// `line N: ` when the value came from a file, else empty.
        location: String,
        /// Property name.
        name: String,
        /// The value given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// Values that are fine one by one but not together.
    #[error("inconsistent workload: {0}")]
    Inconsistent(String),
    /// A name that is not one of the built-in workloads.
    #[error("unknown built-in workload {0:?}; expected one of workloada..workloadf")]
    UnknownWorkload(String),
    /// Property text larger than [`PROPERTIES_TEXT_BYTES_MAX`].
    #[error("property text of {0} bytes exceeds the {PROPERTIES_TEXT_BYTES_MAX}-byte limit")]
    TooLarge(usize),
}

/// A YCSB core workload, with YCSB's property names and defaults (CoreWorkload's defaults; where
/// YCSB treats `recordcount=0` as 2^31 − 1 records, here 0 means an empty table).
#[derive(Debug, Clone, PartialEq)]
pub struct YcsbSpec {
    /// `table` (default `usertable`).
    pub table: String,
    /// `recordcount`: records present after the load phase (default 0).
    pub record_count: u64,
    /// `operationcount`: operations of the run phase (default 0). The generator does not stop on
    /// its own; the driver counts. YCSB also uses it to size the zipfian key space for inserts.
    pub operation_count: u64,
    /// `insertstart` (default 0).
    pub insert_start: u64,
    /// `insertcount`; `None` means recordcount − insertstart.
    pub insert_count: Option<u64>,
    /// `readproportion` (default 0.95).
    pub read_proportion: f64,
    /// `updateproportion` (default 0.05).
    pub update_proportion: f64,
    /// `insertproportion` (default 0).
    pub insert_proportion: f64,
    /// `scanproportion` (default 0).
    pub scan_proportion: f64,
    /// `readmodifywriteproportion` (default 0).
    pub read_modify_write_proportion: f64,
    /// `requestdistribution` (default uniform).
    pub request_distribution: RequestDistribution,
    /// `fieldcount` (default 10).
    pub field_count: u64,
    /// `fieldlength` in bytes (default 100).
    pub field_length: u64,
    /// `fieldlengthdistribution` (default constant).
    pub field_length_distribution: FieldLengthDistribution,
    /// `fieldnameprefix` (default `field`): fields are `field0`, `field1`, ...
    pub field_name_prefix: String,
    /// `minscanlength` (default 1).
    pub min_scan_length: u64,
    /// `maxscanlength` (default 1000).
    pub max_scan_length: u64,
    /// `scanlengthdistribution` (default uniform).
    pub scan_length_distribution: ScanLengthDistribution,
    /// `insertorder` (default hashed).
    pub insert_order: InsertOrder,
    /// `zeropadding` (default 1: no padding).
    pub zero_padding: usize,
    /// `hotspotdatafraction` (default 0.2).
    pub hotspot_data_fraction: f64,
    /// `hotspotopnfraction` (default 0.8).
    pub hotspot_operation_fraction: f64,
    /// `readallfields` (default true).
    pub read_all_fields: bool,
    /// `writeallfields` (default false).
    pub write_all_fields: bool,
    /// Properties this crate does not interpret (client settings such as `threadcount`, binding
    /// settings), kept so that callers can use or report them.
    pub unrecognized: BTreeMap<String, String>,
}

impl Default for YcsbSpec {
    fn default() -> Self {
        Self {
            table: "usertable".to_owned(),
            record_count: 0,
            operation_count: 0,
            insert_start: 0,
            insert_count: None,
            read_proportion: 0.95,
            update_proportion: 0.05,
            insert_proportion: 0.0,
            scan_proportion: 0.0,
            read_modify_write_proportion: 0.0,
            request_distribution: RequestDistribution::Uniform,
            field_count: 10,
            field_length: 100,
            field_length_distribution: FieldLengthDistribution::Constant,
            field_name_prefix: "field".to_owned(),
            min_scan_length: 1,
            max_scan_length: 1000,
            scan_length_distribution: ScanLengthDistribution::Uniform,
            insert_order: InsertOrder::Hashed,
            zero_padding: 1,
            hotspot_data_fraction: 0.2,
            hotspot_operation_fraction: 0.8,
            read_all_fields: true,
            write_all_fields: false,
            unrecognized: BTreeMap::new(),
        }
    }
}

/// The property lines of YCSB's published workload files `workloads/workloada`..`workloadf`
/// (their comments left out). Everything they do not set keeps CoreWorkload's default: fieldcount
/// 10, fieldlength 100, insertorder hashed, writeallfields false.
/// The lines every file shares are in [`BUILTIN_COMMON`].
fn builtin_properties(name: &str) -> Option<&'static str> {
    Some(match name {
        "workloada" => concat!(
            "readproportion=0.5\nupdateproportion=0.5\nscanproportion=0\ninsertproportion=0\n",
            "requestdistribution=zipfian\n"
        ),
        "workloadb" => concat!(
            "readproportion=0.95\nupdateproportion=0.05\nscanproportion=0\ninsertproportion=0\n",
            "requestdistribution=zipfian\n"
        ),
        "workloadc" => concat!(
            "readproportion=1\nupdateproportion=0\nscanproportion=0\ninsertproportion=0\n",
            "requestdistribution=zipfian\n"
        ),
        "workloadd" => concat!(
            "readproportion=0.95\nupdateproportion=0\nscanproportion=0\ninsertproportion=0.05\n",
            "requestdistribution=latest\n"
        ),
        "workloade" => concat!(
            "readproportion=0\nupdateproportion=0\nscanproportion=0.95\ninsertproportion=0.05\n",
            "requestdistribution=zipfian\nmaxscanlength=100\nscanlengthdistribution=uniform\n"
        ),
        "workloadf" => concat!(
            "readproportion=0.5\nupdateproportion=0\nscanproportion=0\ninsertproportion=0\n",
            "readmodifywriteproportion=0.5\nrequestdistribution=zipfian\n"
        ),
        _ => return None,
    })
}

impl YcsbSpec {
    /// One of YCSB's published workloads `workloada`..`workloadf`.
    pub fn builtin(name: &str) -> Result<Self, SpecError> {
        let specific = builtin_properties(name).ok_or_else(|| SpecError::UnknownWorkload(name.to_owned()))?;
        let mut spec = Self::default();
        spec.apply_properties(BUILTIN_COMMON)?;
        spec.apply_properties(specific)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses a YCSB workload property file on top of CoreWorkload's defaults, then validates.
    pub fn from_properties(text: &str) -> Result<Self, SpecError> {
        let mut spec = Self::default();
        spec.apply_properties(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Applies the properties of `text` over this spec (later lines win, as in Java's
    /// `Properties`), like YCSB's `-P file` followed by more `-P`/`-p` options. Checks each value;
    /// call [`YcsbSpec::validate`] for the checks across properties.
    ///
    /// Format: one `name=value` per line; blank lines and lines starting with `#` or `!` are
    /// comments; whitespace around names and values is ignored.
    pub fn apply_properties(&mut self, text: &str) -> Result<(), SpecError> {
        if text.len() > PROPERTIES_TEXT_BYTES_MAX {
            return Err(SpecError::TooLarge(text.len()));
        }
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(SpecError::Syntax { line: index + 1, text: raw.to_owned() });
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                return Err(SpecError::Syntax { line: index + 1, text: raw.to_owned() });
            }
            self.set(name, value).map_err(|error| match error {
                SpecError::BadValue { name, value, reason, .. } => {
                    SpecError::BadValue { location: format!("line {}: ", index + 1), name, value, reason }
                }
                other => other,
            })?;
        }
        Ok(())
    }

    /// Sets one property by its YCSB name (YCSB's `-p name=value`). Unknown names are kept in
    /// [`YcsbSpec::unrecognized`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SpecError> {
        use property as p;
        match name {
            p::TABLE => {
                if value.is_empty() {
                    return Err(bad(name, value, "expected a table name"));
                }
                self.table = value.to_owned();
            }
            p::RECORD_COUNT => self.record_count = parse_count(name, value, RECORD_COUNT_MAX)?,
            p::OPERATION_COUNT => self.operation_count = parse_count(name, value, u64::MAX)?,
            p::INSERT_START => self.insert_start = parse_count(name, value, RECORD_COUNT_MAX)?,
            p::INSERT_COUNT => self.insert_count = Some(parse_count(name, value, RECORD_COUNT_MAX)?),
            p::READ_PROPORTION => self.read_proportion = parse_proportion(name, value)?,
            p::UPDATE_PROPORTION => self.update_proportion = parse_proportion(name, value)?,
            p::INSERT_PROPORTION => self.insert_proportion = parse_proportion(name, value)?,
            p::SCAN_PROPORTION => self.scan_proportion = parse_proportion(name, value)?,
            p::READ_MODIFY_WRITE_PROPORTION => self.read_modify_write_proportion = parse_proportion(name, value)?,
            p::REQUEST_DISTRIBUTION => {
                self.request_distribution = match value {
                    "uniform" => RequestDistribution::Uniform,
                    "zipfian" => RequestDistribution::Zipfian,
                    "latest" => RequestDistribution::Latest,
                    "hotspot" => RequestDistribution::Hotspot,
                    _ => return Err(bad(name, value, "expected uniform, zipfian, latest or hotspot")),
                }
            }
            p::FIELD_COUNT => self.field_count = parse_range(name, value, 1, FIELD_COUNT_MAX)?,
            p::FIELD_LENGTH => self.field_length = parse_range(name, value, 1, FIELD_LENGTH_BYTES_MAX)?,
            p::FIELD_LENGTH_DISTRIBUTION => {
                self.field_length_distribution = match value {
                    "constant" => FieldLengthDistribution::Constant,
                    "uniform" => FieldLengthDistribution::Uniform,
                    "zipfian" => FieldLengthDistribution::Zipfian,
                    _ => return Err(bad(name, value, "expected constant, uniform or zipfian")),
                }
            }
            p::FIELD_NAME_PREFIX => self.field_name_prefix = value.to_owned(),
            p::MIN_SCAN_LENGTH => self.min_scan_length = parse_range(name, value, 1, SCAN_LENGTH_MAX)?,
            p::MAX_SCAN_LENGTH => self.max_scan_length = parse_range(name, value, 1, SCAN_LENGTH_MAX)?,
            p::SCAN_LENGTH_DISTRIBUTION => {
                self.scan_length_distribution = match value {
                    "uniform" => ScanLengthDistribution::Uniform,
                    "zipfian" => ScanLengthDistribution::Zipfian,
                    _ => return Err(bad(name, value, "expected uniform or zipfian")),
                }
            }
            p::INSERT_ORDER => {
                // YCSB treats every value other than "hashed" as ordered; a typo should not
                // silently change the key layout, so only the two documented values are taken.
                self.insert_order = match value {
                    "hashed" => InsertOrder::Hashed,
                    "ordered" => InsertOrder::Ordered,
                    _ => return Err(bad(name, value, "expected hashed or ordered")),
                }
            }
            p::ZERO_PADDING => self.zero_padding = parse_range(name, value, 1, ZERO_PADDING_MAX as u64)? as usize,
            p::HOTSPOT_DATA_FRACTION => self.hotspot_data_fraction = parse_fraction(name, value)?,
            p::HOTSPOT_OPERATION_FRACTION => self.hotspot_operation_fraction = parse_fraction(name, value)?,
            p::READ_ALL_FIELDS => self.read_all_fields = parse_bool(name, value)?,
            p::WRITE_ALL_FIELDS => self.write_all_fields = parse_bool(name, value)?,
            p::WORKLOAD => {
                if !CORE_WORKLOAD_CLASSES.contains(&value) {
                    return Err(bad(name, value, "only site.ycsb.workloads.CoreWorkload is supported"));
                }
            }
            _ => {
                self.unrecognized.insert(name.to_owned(), value.to_owned());
            }
        }
        Ok(())
    }

    /// The number of records this client loads: `insertcount`, or recordcount − insertstart.
    pub fn effective_insert_count(&self) -> u64 {
        self.insert_count.unwrap_or(self.record_count.saturating_sub(self.insert_start))
    }

    /// Whether the run phase ever picks an existing key (reads, updates, scans, read-modify-writes).
    pub fn picks_existing_keys(&self) -> bool {
        self.read_proportion > 0.0
            || self.update_proportion > 0.0
            || self.scan_proportion > 0.0
            || self.read_modify_write_proportion > 0.0
    }

    /// Checks the properties against each other.
    pub fn validate(&self) -> Result<(), SpecError> {
        let inconsistent = |message: String| Err(SpecError::Inconsistent(message));
        let total = self.read_proportion
            + self.update_proportion
            + self.insert_proportion
            + self.scan_proportion
            + self.read_modify_write_proportion;
        if total <= 0.0 || !total.is_finite() {
            return inconsistent("the operation proportions must add up to more than 0".to_owned());
        }
        if self.min_scan_length > self.max_scan_length {
            return inconsistent(format!(
                "minscanlength {} exceeds maxscanlength {}",
                self.min_scan_length, self.max_scan_length
            ));
        }
        let insert_count = self.effective_insert_count();
        if self.insert_start.checked_add(insert_count).is_none_or(|end| end > self.record_count) {
            return inconsistent(format!(
                "insertstart {} + insertcount {insert_count} exceeds recordcount {}",
                self.insert_start, self.record_count
            ));
        }
        if self.picks_existing_keys() && insert_count == 0 {
            return inconsistent(
                "reads, updates, scans and read-modify-writes need records: set recordcount (and insertcount) \
                 to at least 1"
                    .to_owned(),
            );
        }
        if self.field_name_prefix.contains(['\n', '\r']) {
            return inconsistent("fieldnameprefix must not contain a line break".to_owned());
        }
        Ok(())
    }

    /// The spec as a property file that [`YcsbSpec::from_properties`] reads back to an equal
    /// spec. Every known property is written, so the file does not depend on defaults.
    pub fn to_properties(&self) -> String {
        use property as p;
        let mut out = String::new();
        let mut line = |name: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{name}={value}");
        };
        line(p::WORKLOAD, &CORE_WORKLOAD_CLASSES[0]);
        line(p::TABLE, &self.table);
        line(p::RECORD_COUNT, &self.record_count);
        line(p::OPERATION_COUNT, &self.operation_count);
        line(p::INSERT_START, &self.insert_start);
        if let Some(count) = self.insert_count {
            line(p::INSERT_COUNT, &count);
        }
        line(p::READ_PROPORTION, &self.read_proportion);
        line(p::UPDATE_PROPORTION, &self.update_proportion);
        line(p::INSERT_PROPORTION, &self.insert_proportion);
        line(p::SCAN_PROPORTION, &self.scan_proportion);
        line(p::READ_MODIFY_WRITE_PROPORTION, &self.read_modify_write_proportion);
        line(p::REQUEST_DISTRIBUTION, &self.request_distribution.name());
        line(p::FIELD_COUNT, &self.field_count);
        line(p::FIELD_LENGTH, &self.field_length);
        line(p::FIELD_LENGTH_DISTRIBUTION, &self.field_length_distribution.name());
        line(p::FIELD_NAME_PREFIX, &self.field_name_prefix);
        line(p::MIN_SCAN_LENGTH, &self.min_scan_length);
        line(p::MAX_SCAN_LENGTH, &self.max_scan_length);
        line(p::SCAN_LENGTH_DISTRIBUTION, &self.scan_length_distribution.name());
        line(p::INSERT_ORDER, &self.insert_order.name());
        line(p::ZERO_PADDING, &self.zero_padding);
        line(p::HOTSPOT_DATA_FRACTION, &self.hotspot_data_fraction);
        line(p::HOTSPOT_OPERATION_FRACTION, &self.hotspot_operation_fraction);
        line(p::READ_ALL_FIELDS, &self.read_all_fields);
        line(p::WRITE_ALL_FIELDS, &self.write_all_fields);
        for (name, value) in &self.unrecognized {
            line(name, value);
        }
        out
    }
}

/// Lines every published workload file sets.
const BUILTIN_COMMON: &str =
    "recordcount=1000\noperationcount=1000\nworkload=site.ycsb.workloads.CoreWorkload\nreadallfields=true\n";

impl RequestDistribution {
    /// The property value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Zipfian => "zipfian",
            Self::Latest => "latest",
            Self::Hotspot => "hotspot",
        }
    }
}

impl ScanLengthDistribution {
    /// The property value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Zipfian => "zipfian",
        }
    }
}

impl FieldLengthDistribution {
    /// The property value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::Uniform => "uniform",
            Self::Zipfian => "zipfian",
        }
    }
}

impl InsertOrder {
    /// The property value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hashed => "hashed",
            Self::Ordered => "ordered",
        }
    }
}

fn bad(name: &str, value: &str, reason: &str) -> SpecError {
    SpecError::BadValue {
        location: String::new(),
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_count(name: &str, value: &str, max: u64) -> Result<u64, SpecError> {
    parse_range(name, value, 0, max)
}

fn parse_range(name: &str, value: &str, min: u64, max: u64) -> Result<u64, SpecError> {
    let reason = || format!("expected a whole number from {min} to {max}");
    let number: u64 = value.parse().map_err(|_| bad(name, value, &reason()))?;
    if !(min..=max).contains(&number) {
        return Err(bad(name, value, &reason()));
    }
    Ok(number)
}

/// An operation share: finite and not negative. Shares are normalised by their sum (YCSB's
/// `DiscreteGenerator`), so they need not add up to 1.
fn parse_proportion(name: &str, value: &str) -> Result<f64, SpecError> {
    let reason = "expected a number at least 0";
    let number: f64 = value.parse().map_err(|_| bad(name, value, reason))?;
    if !number.is_finite() || number < 0.0 {
        return Err(bad(name, value, reason));
    }
    Ok(number)
}

/// A fraction in [0, 1]; YCSB silently replaces out-of-range hotspot fractions with 0.
fn parse_fraction(name: &str, value: &str) -> Result<f64, SpecError> {
    let reason = "expected a number from 0 to 1";
    let number: f64 = value.parse().map_err(|_| bad(name, value, reason))?;
    if !(0.0..=1.0).contains(&number) {
        return Err(bad(name, value, reason));
    }
    Ok(number)
}

/// `true` or `false` in any case. Java's `Boolean.parseBoolean` reads anything else as false; a
/// clear error is more useful.
fn parse_bool(name: &str, value: &str) -> Result<bool, SpecError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(bad(name, value, "expected true or false"))
    }
}
