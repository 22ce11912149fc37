//! Tests of the workload definitions, the property parser and the operation generator.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::keygen::fnvhash64;

fn builtin(name: &str) -> YcsbSpec {
    YcsbSpec::builtin(name).unwrap()
}

#[test]
fn builtin_workloads_are_ycsbs_published_ones() {
    // (read, update, insert, scan, read-modify-write, distribution) per YCSB's workloads/ files.
    let expected = [
        ("workloada", [0.5, 0.5, 0.0, 0.0, 0.0], RequestDistribution::Zipfian),
        ("workloadb", [0.95, 0.05, 0.0, 0.0, 0.0], RequestDistribution::Zipfian),
        ("workloadc", [1.0, 0.0, 0.0, 0.0, 0.0], RequestDistribution::Zipfian),
        ("workloadd", [0.95, 0.0, 0.05, 0.0, 0.0], RequestDistribution::Latest),
        ("workloade", [0.0, 0.0, 0.05, 0.95, 0.0], RequestDistribution::Zipfian),
        ("workloadf", [0.5, 0.0, 0.0, 0.0, 0.5], RequestDistribution::Zipfian),
    ];
    assert_eq!(expected.map(|(name, _, _)| name), BUILTIN_WORKLOADS);
    for (name, shares, distribution) in expected {
        let spec = builtin(name);
        let got = [
            spec.read_proportion,
            spec.update_proportion,
            spec.insert_proportion,
            spec.scan_proportion,
            spec.read_modify_write_proportion,
        ];
        assert_eq!(got, shares, "{name}");
        assert_eq!(spec.request_distribution, distribution, "{name}");
        assert_eq!((spec.record_count, spec.operation_count), (1000, 1000), "{name}");
        assert_eq!((spec.field_count, spec.field_length), (10, 100), "{name}");
        assert_eq!(spec.field_length_distribution, FieldLengthDistribution::Constant);
        assert!(spec.read_all_fields && !spec.write_all_fields, "{name}");
        assert_eq!(spec.insert_order, InsertOrder::Hashed, "{name}");
        assert_eq!(spec.table, "usertable");
        assert!(spec.unrecognized.is_empty());
    }
    let e = builtin("workloade");
    assert_eq!(
        (e.min_scan_length, e.max_scan_length, e.scan_length_distribution),
        (1, 100, ScanLengthDistribution::Uniform)
    );
    assert_eq!(builtin("workloada").max_scan_length, 1000, "CoreWorkload's default");
    assert_eq!(YcsbSpec::builtin("workloadg"), Err(SpecError::UnknownWorkload("workloadg".to_owned())));
}

#[test]
fn parser_reads_a_workload_file() {
    let text = "# Yahoo! Cloud System Benchmark\n\
                ! also a comment\n\
                \n\
                workload=com.yahoo.ycsb.workloads.CoreWorkload\n\
                recordcount = 5000 \n\
                operationcount=20000\n\
                readproportion=0.7\n\
                updateproportion=0.3\n\
                updateproportion=0.2\n\
                requestdistribution=hotspot\n\
                hotspotdatafraction=0.1\n\
                hotspotopnfraction=0.9\n\
                fieldcount=3\n\
                fieldlength=8\n\
                fieldlengthdistribution=uniform\n\
                readallfields=FALSE\n\
                writeallfields=true\n\
                insertorder=ordered\n\
                zeropadding=12\n\
                scanlengthdistribution=zipfian\n\
                minscanlength=2\n\
                maxscanlength=50\n\
                table=items\n\
                threadcount=16\n";
    let spec = YcsbSpec::from_properties(text).unwrap();
    assert_eq!((spec.record_count, spec.operation_count), (5000, 20000));
    assert_eq!((spec.read_proportion, spec.update_proportion), (0.7, 0.2), "the later line wins");
    assert_eq!(spec.request_distribution, RequestDistribution::Hotspot);
    assert_eq!((spec.hotspot_data_fraction, spec.hotspot_operation_fraction), (0.1, 0.9));
    assert_eq!((spec.field_count, spec.field_length), (3, 8));
    assert_eq!(spec.field_length_distribution, FieldLengthDistribution::Uniform);
    assert!(!spec.read_all_fields && spec.write_all_fields);
    assert_eq!((spec.insert_order, spec.zero_padding), (InsertOrder::Ordered, 12));
    assert_eq!(spec.scan_length_distribution, ScanLengthDistribution::Zipfian);
    assert_eq!((spec.min_scan_length, spec.max_scan_length), (2, 50));
    assert_eq!(spec.table, "items");
    assert_eq!(spec.unrecognized.get("threadcount").map(String::as_str), Some("16"));
}

#[test]
fn parser_errors_name_the_line_and_property() {
    let error = |text: &str| YcsbSpec::from_properties(text).unwrap_err();
    assert_eq!(error("recordcount=10\nbogus line\n"), SpecError::Syntax { line: 2, text: "bogus line".to_owned() });
    assert!(matches!(error("=5"), SpecError::Syntax { line: 1, .. }));
    let cases = [
        ("recordcount=-1", "recordcount"),
        ("recordcount=ten", "recordcount"),
        ("recordcount=20000000000", "recordcount"),
        ("readproportion=-0.1", "readproportion"),
        ("readproportion=NaN", "readproportion"),
        ("scanproportion=inf", "scanproportion"),
        ("requestdistribution=exponential", "requestdistribution"),
        ("scanlengthdistribution=latest", "scanlengthdistribution"),
        ("fieldlengthdistribution=histogram", "fieldlengthdistribution"),
        ("insertorder=random", "insertorder"),
        ("hotspotdatafraction=1.5", "hotspotdatafraction"),
        ("hotspotopnfraction=-0.2", "hotspotopnfraction"),
        ("readallfields=yes", "readallfields"),
        ("writeallfields=1", "writeallfields"),
        ("fieldcount=0", "fieldcount"),
        ("fieldlength=409601", "fieldlength"),
        ("maxscanlength=0", "maxscanlength"),
        ("zeropadding=65", "zeropadding"),
        ("table=", "table"),
        ("workload=site.ycsb.workloads.TimeSeriesWorkload", "workload"),
    ];
    for (line, property) in cases {
        match error(&format!("recordcount=10\n{line}\n")) {
            SpecError::BadValue { location, name, .. } => {
                assert_eq!((location.as_str(), name.as_str()), ("line 2: ", property), "{line}");
            }
            other => panic!("{line}: unexpected {other:?}"),
        }
    }
    let message = error("recordcount=10\nreadproportion=lots\n").to_string();
    assert_eq!(message, "line 2: property readproportion: invalid value \"lots\": expected a number at least 0");
}

#[test]
fn validation_checks_properties_against_each_other() {
    let inconsistent = |text: &str| matches!(YcsbSpec::from_properties(text), Err(SpecError::Inconsistent(_)));
    assert!(inconsistent("recordcount=10\nreadproportion=0\nupdateproportion=0"), "no operations");
    assert!(inconsistent("recordcount=10\nminscanlength=20\nmaxscanlength=10"));
    assert!(inconsistent("recordcount=10\ninsertstart=5\ninsertcount=6"));
    assert!(inconsistent("readproportion=1"), "reads without records");
    assert!(YcsbSpec::from_properties("readproportion=0\nupdateproportion=0\ninsertproportion=1").is_ok());
    assert!(YcsbSpec::from_properties("recordcount=10\ninsertstart=5\ninsertcount=5").is_ok());
}

/// A valid spec with every property varied.
fn arbitrary_spec() -> impl Strategy<Value = YcsbSpec> {
    let counts = (1u64..=1_000_000, 0u64..=10_000_000, 0u64..=1000, proptest::option::of(0u64..=1000));
    let shares = proptest::array::uniform5(prop_oneof![Just(0.0), 0.0f64..=1.0, 0.0f64..1e6]);
    let enums = (
        prop_oneof![
            Just(RequestDistribution::Uniform),
            Just(RequestDistribution::Zipfian),
            Just(RequestDistribution::Latest),
            Just(RequestDistribution::Hotspot)
        ],
        prop_oneof![Just(ScanLengthDistribution::Uniform), Just(ScanLengthDistribution::Zipfian)],
        prop_oneof![
            Just(FieldLengthDistribution::Constant),
            Just(FieldLengthDistribution::Uniform),
            Just(FieldLengthDistribution::Zipfian)
        ],
        prop_oneof![Just(InsertOrder::Hashed), Just(InsertOrder::Ordered)],
    );
    let fields =
        (1..=FIELD_COUNT_MAX, 1..=FIELD_LENGTH_BYTES_MAX, "[a-zA-Z_][a-zA-Z0-9_.-]{0,10}", 1..=ZERO_PADDING_MAX);
    let scans = (1..=SCAN_LENGTH_MAX, 1..=SCAN_LENGTH_MAX);
    let rest = (
        0.0f64..=1.0,
        0.0f64..=1.0,
        any::<bool>(),
        any::<bool>(),
        "[a-zA-Z][a-zA-Z0-9_.-]{0,20}",
        proptest::collection::btree_map("x[a-z]{1,8}", "[ -~]{0,12}", 0..4),
    );
    (counts, shares, enums, fields, scans, rest).prop_filter_map(
        "consistent specs only",
        |(counts, shares, enums, fields, scans, rest)| {
            let (record_count, operation_count, insert_start, insert_count) = counts;
            let (request_distribution, scan_length_distribution, field_length_distribution, insert_order) = enums;
            let (field_count, field_length, field_name_prefix, zero_padding) = fields;
            let (hotspot_data_fraction, hotspot_operation_fraction, read_all_fields, write_all_fields, table, extra) =
                rest;
            let spec = YcsbSpec {
                table,
                record_count,
                operation_count,
                insert_start,
                insert_count,
                read_proportion: shares[0],
                update_proportion: shares[1],
                insert_proportion: shares[2],
                scan_proportion: shares[3],
                read_modify_write_proportion: shares[4],
                request_distribution,
                field_count,
                field_length,
                field_length_distribution,
                field_name_prefix,
                min_scan_length: scans.0.min(scans.1),
                max_scan_length: scans.0.max(scans.1),
                scan_length_distribution,
                insert_order,
                zero_padding,
                hotspot_data_fraction,
                hotspot_operation_fraction,
                read_all_fields,
                write_all_fields,
                // Values are trimmed when parsed, so generated ones carry no outer whitespace.
                unrecognized: extra.into_iter().map(|(name, value)| (name, value.trim().to_owned())).collect(),
            };
            spec.validate().is_ok().then_some(spec)
        },
    )
}

/// Lines built from YCSB's property names and hostile values.
fn property_lines() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just(property::RECORD_COUNT),
        Just(property::OPERATION_COUNT),
        Just(property::INSERT_START),
        Just(property::INSERT_COUNT),
        Just(property::READ_PROPORTION),
        Just(property::UPDATE_PROPORTION),
        Just(property::INSERT_PROPORTION),
        Just(property::SCAN_PROPORTION),
        Just(property::READ_MODIFY_WRITE_PROPORTION),
        Just(property::REQUEST_DISTRIBUTION),
        Just(property::FIELD_COUNT),
        Just(property::FIELD_LENGTH),
        Just(property::FIELD_LENGTH_DISTRIBUTION),
        Just(property::MIN_SCAN_LENGTH),
        Just(property::MAX_SCAN_LENGTH),
        Just(property::SCAN_LENGTH_DISTRIBUTION),
        Just(property::INSERT_ORDER),
        Just(property::ZERO_PADDING),
        Just(property::HOTSPOT_DATA_FRACTION),
        Just(property::HOTSPOT_OPERATION_FRACTION),
        Just(property::READ_ALL_FIELDS),
        Just(property::WRITE_ALL_FIELDS),
        Just(property::TABLE),
        Just(property::WORKLOAD),
    ];
    let values = prop_oneof![
        "-?[0-9]{0,25}",
        "-?[0-9]{0,3}\\.[0-9]{0,6}(e-?[0-9]{1,3})?",
        Just("NaN".to_owned()),
        Just("-inf".to_owned()),
        "(uniform|zipfian|latest|hotspot|constant|hashed|ordered|true|false|TRUE)",
        "\\PC{0,12}",
    ];
    proptest::collection::vec((names, values), 0..30)
        .prop_map(|lines| lines.into_iter().map(|(name, value)| format!("{name}={value}\n")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text at all parses to a spec or an error, never a panic.
    #[test]
    fn parser_never_panics_on_any_text(text in "\\PC{0,400}") {
        let _ = YcsbSpec::from_properties(&text);
    }

    /// Known names with hostile values: a spec or an error, never a panic; a spec that parses
    /// can build a workload.
    #[test]
    fn parser_never_panics_on_known_names(text in property_lines()) {
        if let Ok(spec) = YcsbSpec::from_properties(&text) {
            // ζ over up to 10^10 records would take too long here; small tables only.
            if spec.record_count <= 100_000 && spec.max_scan_length <= 100_000 && spec.field_length <= 10_000 {
                let mut workload = YcsbWorkload::new(spec, 1).unwrap();
                for _ in 0..5 {
                    if let Operation::Insert { key_number, .. } = workload.next_operation() {
                        workload.acknowledge_insert(key_number).unwrap();
                    }
                }
            }
        }
    }

    /// A generated spec written as a property file reads back equal.
    #[test]
    fn properties_round_trip(spec in arbitrary_spec()) {
        let text = spec.to_properties();
        prop_assert_eq!(YcsbSpec::from_properties(&text), Ok(spec));
    }
}

fn small_spec(name: &str) -> YcsbSpec {
    let mut spec = builtin(name);
    spec.set(property::OPERATION_COUNT, "100000").unwrap();
    spec
}

/// Counts operation kinds over `draws` operations (acknowledging inserts at once).
fn mix(workload: &mut YcsbWorkload, draws: u64) -> [u64; 5] {
    let mut counts = [0u64; 5];
    for _ in 0..draws {
        let operation = workload.next_operation();
        counts[operation.kind() as usize] += 1;
        if let Operation::Insert { key_number, .. } = operation {
            workload.acknowledge_insert(key_number).unwrap();
        }
    }
    counts
}

#[test]
fn operation_mix_matches_the_proportions() {
    // 100,000 operations: a share p has standard error √(p(1−p)/n) ≤ 0.0016; tolerance 0.01.
    const OPERATIONS: u64 = 100_000;
    for name in BUILTIN_WORKLOADS {
        let spec = small_spec(name);
        let shares = [
            spec.read_proportion,
            spec.update_proportion,
            spec.insert_proportion,
            spec.scan_proportion,
            spec.read_modify_write_proportion,
        ];
        let mut workload = YcsbWorkload::new(spec, 11).unwrap();
        let counts = mix(&mut workload, OPERATIONS);
        for (kind, (&count, &share)) in counts.iter().zip(&shares).enumerate() {
            let observed = count as f64 / OPERATIONS as f64;
            assert!((observed - share).abs() < 0.01, "{name} kind {kind}: {observed} vs {share}");
        }
    }
}

#[test]
fn operations_target_loaded_keys_with_ycsb_fields() {
    let mut workload = YcsbWorkload::new(small_spec("workloada"), 5).unwrap();
    let loaded: BTreeSet<String> = workload
        .load_phase()
        .map(|operation| match operation {
            Operation::Insert { key, values, .. } => {
                assert_eq!(values.len(), 10);
                assert!(values.iter().all(|(field, value)| field.starts_with("field") && value.len() == 100));
                key
            }
            other => panic!("load phase gave {other:?}"),
        })
        .collect();
    assert_eq!(loaded.len(), 1000);
    assert!(loaded.contains("user6284781860667377211"), "key of record 0");
    for _ in 0..10_000 {
        match workload.next_operation() {
            Operation::Read { key, fields } => {
                assert!(loaded.contains(&key));
                assert_eq!(fields, None, "readallfields=true reads every field");
            }
            Operation::Update { key, values } => {
                assert!(loaded.contains(&key));
                assert_eq!(values.len(), 1, "writeallfields=false writes one field");
                let (field, value) = values.iter().next().unwrap();
                assert!(workload.field_names().contains(field));
                assert_eq!(value.len(), 100);
            }
            other => panic!("workload A gave {other:?}"),
        }
    }
}

#[test]
fn load_phase_keys_are_hashed_or_ordered_key_numbers() {
    let spec = YcsbSpec::from_properties("recordcount=10\ninsertstart=3\ninsertcount=4").unwrap();
    let keys: Vec<String> = YcsbWorkload::new(spec.clone(), 1)
        .unwrap()
        .load_phase()
        .map(|operation| match operation {
            Operation::Insert { key, .. } => key,
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (3..7).map(|n| format!("user{}", fnvhash64(n))).collect();
    assert_eq!(keys, expected);
    let mut ordered = spec;
    ordered.set(property::INSERT_ORDER, "ordered").unwrap();
    ordered.set(property::ZERO_PADDING, "4").unwrap();
    let keys: Vec<String> = YcsbWorkload::new(ordered, 1)
        .unwrap()
        .load_phase()
        .map(|operation| match operation {
            Operation::Insert { key, .. } => key,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["user0003", "user0004", "user0005", "user0006"]);
}

#[test]
fn run_phase_inserts_extend_the_key_space_and_latest_follows() {
    let mut workload = YcsbWorkload::new(small_spec("workloadd"), 3).unwrap();
    assert_eq!(workload.latest_key_number(), Some(999));
    let mut next_insert = 1000;
    let mut newest_reads = 0u64;
    let mut reads = 0u64;
    for _ in 0..20_000 {
        match workload.next_operation() {
            Operation::Insert { key, key_number, values } => {
                assert_eq!(key_number, next_insert, "inserts take key numbers beyond recordcount in order");
                assert_eq!(key, workload.key(key_number));
                assert_eq!(values.len(), 10);
                next_insert += 1;
                workload.acknowledge_insert(key_number).unwrap();
            }
            Operation::Read { key, .. } => {
                reads += 1;
                let latest = workload.latest_key_number().unwrap();
                // The newest ten keys by key number.
                newest_reads += u64::from((latest - 9..=latest).any(|n| workload.key(n) == key));
            }
            other => panic!("workload D gave {other:?}"),
        }
    }
    assert_eq!(workload.latest_key_number(), Some(next_insert - 1));
    // Ideal share of the newest 10 of ~1000–2000 keys: ζ(10)/ζ(n) ≈ 0.36–0.38; at least 0.3.
    assert!(newest_reads as f64 / reads as f64 > 0.3, "{newest_reads} of {reads}");
}

#[test]
fn unacknowledged_inserts_are_not_read() {
    let mut spec = small_spec("workloadd");
    spec.set(property::INSERT_ORDER, "ordered").unwrap();
    let mut workload = YcsbWorkload::new(spec, 8).unwrap();
    for _ in 0..5_000 {
        match workload.next_operation() {
            Operation::Insert { .. } => {}
            Operation::Read { key, .. } => {
                let number: u64 = key.trim_start_matches("user").parse().unwrap();
                assert!(number <= 999, "read of unacknowledged key {key}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn scans_have_ycsb_lengths() {
    let mut workload = YcsbWorkload::new(small_spec("workloade"), 4).unwrap();
    let mut lengths = BTreeSet::new();
    for _ in 0..20_000 {
        match workload.next_operation() {
            Operation::Scan { count, fields, .. } => {
                assert!((1..=100).contains(&count));
                assert_eq!(fields, None);
                lengths.insert(count);
            }
            Operation::Insert { key_number, .. } => workload.acknowledge_insert(key_number).unwrap(),
            other => panic!("workload E gave {other:?}"),
        }
    }
    assert_eq!(lengths.len(), 100, "uniform over 1..=100 reaches every length");
}

#[test]
fn read_modify_write_reads_and_writes_one_key() {
    let mut spec = small_spec("workloadf");
    spec.set(property::READ_ALL_FIELDS, "false").unwrap();
    let mut workload = YcsbWorkload::new(spec, 2).unwrap();
    let mut seen = 0;
    for _ in 0..1_000 {
        if let Operation::ReadModifyWrite { key, fields, values } = workload.next_operation() {
            assert!(key.starts_with("user"));
            assert_eq!(fields.as_ref().map(Vec::len), Some(1), "readallfields=false reads one field");
            assert_eq!(values.len(), 1);
            seen += 1;
        }
    }
    assert!(seen > 400);
}

/// Renders the first operations of a run to compare runs.
fn trace(spec: &YcsbSpec, seed: u64) -> Vec<Operation> {
    let mut workload = YcsbWorkload::new(spec.clone(), seed).unwrap();
    let mut operations: Vec<Operation> = workload.load_phase().take(20).collect();
    for _ in 0..500 {
        let operation = workload.next_operation();
        if let Operation::Insert { key_number, .. } = operation {
            workload.acknowledge_insert(key_number).unwrap();
        }
        operations.push(operation);
    }
    operations
}

#[test]
fn same_seed_same_operations_different_seed_different_operations() {
    for name in BUILTIN_WORKLOADS {
        let spec = small_spec(name);
        assert_eq!(trace(&spec, 42), trace(&spec, 42), "{name}");
        assert_ne!(trace(&spec, 42), trace(&spec, 43), "{name}");
    }
}

#[test]
fn changing_field_length_does_not_move_the_keys() {
    let spec = small_spec("workloada");
    let mut longer = spec.clone();
    longer.set(property::FIELD_LENGTH, "7").unwrap();
    let keys = |spec: &YcsbSpec| {
        let mut workload = YcsbWorkload::new(spec.clone(), 42).unwrap();
        (0..200)
            .map(|_| match workload.next_operation() {
                Operation::Read { key, .. } | Operation::Update { key, .. } => key,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&spec), keys(&longer), "each kind of choice has its own RNG stream");
}

/// Regression: a huge operationcount with inserts overflowed the zipfian key range.
#[test]
fn huge_operation_count_does_not_overflow_the_key_range() {
    let text =
        format!("recordcount=10\noperationcount={}\ninsertproportion=1e6\nrequestdistribution=zipfian", u64::MAX);
    let mut workload = YcsbWorkload::new(YcsbSpec::from_properties(&text).unwrap(), 1).unwrap();
    for _ in 0..100 {
        if let Operation::Insert { key_number, .. } = workload.next_operation() {
            workload.acknowledge_insert(key_number).unwrap();
        }
    }
}
