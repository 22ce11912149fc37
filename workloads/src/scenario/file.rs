//! The scenario file format (TOML) and the built-in scenarios.
//!
//! ```toml
//! name = "orders-small"          # optional; the file name otherwise
//! scenario = "orders"            # ycsb-a..ycsb-f, ycsb, orders, sessions, feed, bank or custom
//!
//! [orders]                       # settings of the chosen scenario; everything has a default
//! customers = 200
//! initial_stock = 50
//!
//! [run]                          # defaults for squall-load's flags; flags win
//! mode = "open"                  # open or closed
//! arrivals = "poisson"           # constant or poisson
//! rate = 500                     # operations per second (open loop)
//! clients = 8                    # closed-loop clients, or connections of an open loop
//! think_time = "0ms"
//! warmup = "2s"
//! operations = 100000            # upper bound on run-phase operations
//!
//! [[phases]]                     # in order; load at most once and first
//! kind = "load"
//! [[phases]]
//! kind = "ramp"                  # rate goes linearly from `from` to `to`
//! from = 50
//! to = 500
//! duration = "10s"
//! [[phases]]
//! kind = "run"                   # constant rate (the run's rate when not given)
//! duration = "30s"
//! ```
//!
//! A `ycsb` scenario takes YCSB's property names in `[ycsb]` (`recordcount = 1000`, ...) on top of
//! `base = "workloada"`; `custom` takes `[[tables]]` and `[[operations]]` (see
//! [`super::custom`]). Durations are a number with `ms`, `s`, `m` or `h`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bank::{Bank, BankConfig};
use super::custom::{Custom, CustomSpec, OperationSpec, TableSpec};
use super::feed::{Feed, FeedConfig};
use super::orders::{Orders, OrdersConfig};
use super::sessions::{Sessions, SessionsConfig};
use super::ycsb::YcsbScenario;
use super::Scenario;
use crate::ycsb::YcsbSpec;

/// Built-in scenario names.
pub const BUILTIN_SCENARIOS: [&str; 10] =
    ["ycsb-a", "ycsb-b", "ycsb-c", "ycsb-d", "ycsb-e", "ycsb-f", "orders", "sessions", "feed", "bank"];
/// Largest scenario file, bytes.
pub const SCENARIO_FILE_BYTES_MAX: usize = 1 << 20;
/// Most phases in a file.
pub const PHASES_MAX: usize = 1_000;

/// A scenario file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not valid TOML or not the expected shape; the message has the line and column.
    #[error("{0}")]
    Syntax(String),
    /// Values that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// A name that is neither a built-in scenario nor a file.
    #[error("unknown scenario {0:?}; expected a .toml file or one of {names}", names = BUILTIN_SCENARIOS.join(", "))]
    Unknown(String),
}

/// Open or closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Arrivals at a rate.
    Open,
    /// N clients.
    Closed,
}

/// `[run]`: defaults for the runner; command-line flags win.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Open or closed loop.
    pub mode: Option<Mode>,
    /// `constant` or `poisson`.
    pub arrivals: Option<crate::runner::Arrivals>,
    /// Operations per second.
    pub rate: Option<f64>,
    /// Clients or connections.
    pub clients: Option<usize>,
    /// Think time of closed-loop clients.
    #[serde(default, with = "opt_duration")]
    pub think_time: Option<Duration>,
    /// Warm-up excluded from the results.
    #[serde(default, with = "opt_duration")]
    pub warmup: Option<Duration>,
    /// Run length when there are no run phases.
    #[serde(default, with = "opt_duration")]
    pub duration: Option<Duration>,
    /// Most run-phase operations.
    pub operations: Option<u64>,
}

/// One phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", deny_unknown_fields)]
pub enum Phase {
    /// The scenario's load phase.
    Load,
    /// A constant rate.
    Run {
        /// Length.
        #[serde(with = "duration_text")]
        duration: Duration,
        /// Rate; the run's rate when absent.
        #[serde(default)]
        rate: Option<f64>,
    },
    /// A rate going linearly from `from` to `to`.
    Ramp {
        /// Length.
        #[serde(with = "duration_text")]
        duration: Duration,
        /// Rate at the start.
        from: f64,
        /// Rate at the end.
        to: f64,
    },
}

/// A parsed scenario file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Name used in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Which scenario.
    pub scenario: String,
    /// YCSB workload the `[ycsb]` properties apply to (for `scenario = "ycsb"`).
    #[serde(default)]
    pub base: Option<String>,
    /// YCSB properties.
    #[serde(default)]
    pub ycsb: Option<toml::Table>,
    /// Strongly consistent reads for YCSB.
    #[serde(default)]
    pub consistent_reads: Option<bool>,
    /// Order system settings.
    #[serde(default)]
    pub orders: Option<OrdersConfig>,
    /// Session store settings.
    #[serde(default)]
    pub sessions: Option<SessionsConfig>,
    /// Feed settings.
    #[serde(default)]
    pub feed: Option<FeedConfig>,
    /// Bank settings.
    #[serde(default)]
    pub bank: Option<BankConfig>,
    /// Custom tables.
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    /// Custom operations.
    #[serde(default)]
    pub operations: Vec<OperationSpec>,
    /// Runner defaults.
    #[serde(default)]
    pub run: RunSection,
    /// Phases, in order.
    #[serde(default)]
    pub phases: Vec<Phase>,
}

impl ScenarioFile {
    /// Parses and validates scenario TOML; `default_name` names it when the file does not.
    pub fn parse(text: &str, default_name: &str) -> Result<Self, ScenarioError> {
        if text.len() > SCENARIO_FILE_BYTES_MAX {
            return Err(ScenarioError::Invalid(format!("scenario file exceeds {SCENARIO_FILE_BYTES_MAX} bytes")));
        }
        let mut file: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Syntax(e.to_string()))?;
        file.name.get_or_insert_with(|| default_name.to_owned());
        file.validate()?;
        Ok(file)
    }

    /// A built-in scenario by name.
    pub fn builtin(name: &str) -> Result<Self, ScenarioError> {
        if !BUILTIN_SCENARIOS.contains(&name) {
            return Err(ScenarioError::Unknown(name.to_owned()));
        }
        let file = ScenarioFile {
            name: Some(name.to_owned()),
            scenario: name.to_owned(),
            phases: vec![Phase::Load],
            ..Default::default()
        };
        file.validate()?;
        Ok(file)
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.scenario)
    }

    /// Whether a load phase is asked for.
    pub fn has_load_phase(&self) -> bool {
        self.phases.contains(&Phase::Load)
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |m: String| ScenarioError::Invalid(m);
        let sections = [
            ("ycsb", self.ycsb.is_some() || self.base.is_some()),
            ("orders", self.orders.is_some()),
            ("sessions", self.sessions.is_some()),
            ("feed", self.feed.is_some()),
            ("bank", self.bank.is_some()),
            ("custom", !self.tables.is_empty() || !self.operations.is_empty()),
        ];
        let kind = if self.scenario.starts_with("ycsb") { "ycsb" } else { self.scenario.as_str() };
        for (section, present) in sections {
            if present && section != kind {
                return Err(invalid(format!("settings for {section} given, but scenario is {:?}", self.scenario)));
            }
        }
        if self.phases.len() > PHASES_MAX {
            return Err(invalid(format!("more than {PHASES_MAX} phases")));
        }
        for (i, phase) in self.phases.iter().enumerate() {
            match phase {
                Phase::Load if i > 0 => return Err(invalid("the load phase must be the first phase".into())),
                Phase::Run { rate: Some(rate), .. } | Phase::Ramp { from: rate, .. } | Phase::Ramp { to: rate, .. }
                    if !rate.is_finite() || *rate < 0.0 =>
                {
                    return Err(invalid(format!("phase {}: rates must be finite and not negative", i + 1)))
                }
                _ => {}
            }
            if let Phase::Ramp { from, to, .. } = phase {
                if !from.is_finite() || !to.is_finite() || *from < 0.0 || *to < 0.0 {
                    return Err(invalid(format!("phase {}: rates must be finite and not negative", i + 1)));
                }
            }
        }
        if let Some(rate) = self.run.rate {
            if !rate.is_finite() || rate <= 0.0 {
                return Err(invalid(format!("[run] rate {rate} must be above 0")));
            }
        }
        if self.run.clients == Some(0) {
            return Err(invalid("[run] clients must be at least 1".into()));
        }
        // Building the scenario runs every scenario-specific check.
        self.build(0).map(|_| ())
    }

    /// The scenario, seeded.
    pub fn build(&self, seed: u64) -> Result<Scenario, ScenarioError> {
        fn invalid(section: &'static str) -> impl Fn(String) -> ScenarioError {
            move |m| ScenarioError::Invalid(format!("[{section}] {m}"))
        }
        let name = self.name();
        Ok(match self.scenario.as_str() {
            "ycsb" | "ycsb-a" | "ycsb-b" | "ycsb-c" | "ycsb-d" | "ycsb-e" | "ycsb-f" => {
                let base = match (self.scenario.strip_prefix("ycsb-"), &self.base) {
                    (Some(letter), None) => format!("workload{letter}"),
                    (Some(_), Some(_)) => {
                        return Err(ScenarioError::Invalid("base is only for scenario = \"ycsb\"".into()))
                    }
                    (None, base) => base.clone().unwrap_or_else(|| "workloada".into()),
                };
                let mut spec = YcsbSpec::builtin(&base).map_err(|e| ScenarioError::Invalid(format!("base: {e}")))?;
                for (property, value) in self.ycsb.iter().flatten() {
                    let text = match value {
                        toml::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    spec.set(property, &text).map_err(|e| ScenarioError::Invalid(format!("[ycsb] {e}")))?;
                }
                spec.validate().map_err(|e| ScenarioError::Invalid(format!("[ycsb] {e}")))?;
                let scenario = YcsbScenario::new(name, spec, seed, self.consistent_reads.unwrap_or(false))
                    .map_err(|e| ScenarioError::Invalid(format!("[ycsb] {e}")))?;
                Scenario::Ycsb(Box::new(scenario))
            }
            "orders" => Scenario::Orders(
                Orders::new(name, self.orders.clone().unwrap_or_default(), seed).map_err(invalid("orders"))?,
            ),
            "sessions" => Scenario::Sessions(
                Sessions::new(name, self.sessions.clone().unwrap_or_default(), seed).map_err(invalid("sessions"))?,
            ),
            "feed" => {
                Scenario::Feed(Feed::new(name, self.feed.clone().unwrap_or_default(), seed).map_err(invalid("feed"))?)
            }
            "bank" => {
                Scenario::Bank(Bank::new(name, self.bank.clone().unwrap_or_default(), seed).map_err(invalid("bank"))?)
            }
            "custom" => {
                let spec = CustomSpec { tables: self.tables.clone(), operations: self.operations.clone() };
                Scenario::Custom(Custom::new(name, spec, seed).map_err(invalid("custom"))?)
            }
            other => return Err(ScenarioError::Unknown(other.to_owned())),
        })
    }
}

/// Parses `250ms`, `2s`, `1.5s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("duration {text:?}: expected a number and ms, s, m or h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("duration {text:?}: expected a unit of ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("duration {text:?} is out of range"))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: &Duration) -> String {
    if duration.subsec_millis() == 0 && duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        super::parse_duration(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => serializer.serialize_str(&super::format_duration(duration)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 days").is_err());
        assert_eq!(format_duration(&Duration::from_secs(3)), "3s");
        assert_eq!(format_duration(&Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn every_builtin_builds() {
        for name in BUILTIN_SCENARIOS {
            let file = ScenarioFile::builtin(name).unwrap();
            let scenario = file.build(1).unwrap();
            assert_eq!(scenario.name(), name);
            assert!(!scenario.tables().is_empty());
        }
        assert!(matches!(ScenarioFile::builtin("ycsb-z"), Err(ScenarioError::Unknown(_))));
    }

    #[test]
    fn files_parse_with_phases_and_settings() {
        let text = r#"
            scenario = "orders"
            [orders]
            customers = 20
            initial_stock = 7
            product_distribution = { kind = "hotspot", data_fraction = 0.1, operation_fraction = 0.9 }
            [run]
            mode = "open"
            arrivals = "poisson"
            rate = 200
            warmup = "1s"
            [[phases]]
            kind = "load"
            [[phases]]
            kind = "ramp"
            from = 10
            to = 200
            duration = "5s"
            [[phases]]
            kind = "run"
            duration = "10s"
        "#;
        let file = ScenarioFile::parse(text, "small-orders").unwrap();
        assert_eq!(file.name(), "small-orders");
        assert_eq!(file.orders.as_ref().unwrap().customers, 20);
        assert_eq!(file.run.warmup, Some(Duration::from_secs(1)));
        assert_eq!(file.phases.len(), 3);
        assert!(file.has_load_phase());
        assert!(matches!(file.build(3).unwrap(), Scenario::Orders(_)));
    }

    #[test]
    fn ycsb_files_take_property_names() {
        let text = "scenario = \"ycsb\"\nbase = \"workloadb\"\n[ycsb]\nrecordcount = 50\nfieldcount = 2\n";
        let file = ScenarioFile::parse(text, "y").unwrap();
        let Scenario::Ycsb(scenario) = file.build(1).unwrap() else { panic!("not ycsb") };
        assert_eq!((scenario.spec().record_count, scenario.spec().field_count), (50, 2));
        assert_eq!(scenario.spec().read_proportion, 0.95);
    }

    #[test]
    fn custom_files_build() {
        let text = r#"
            scenario = "custom"
            [[tables]]
            name = "kv_items"
            partition_key = "id:S"
            sort_key = "n:N"
            items = 100
            sort_keys_per_partition = 10
            key_distribution = { kind = "zipfian" }
            attributes = [
                { name = "payload", kind = "string", size = 64, size_min = 16 },
                { name = "group", kind = "choice", choices = 4 },
            ]
            indexes = [{ name = "by_group", partition_key = "group:S", sort_key = "n:N" }]
            [[operations]]
            kind = "get"
            table = "kv_items"
            weight = 3
            [[operations]]
            kind = "query"
            table = "kv_items"
            index = "by_group"
            weight = 1
            limit = 5
        "#;
        let file = ScenarioFile::parse(text, "kv").unwrap();
        let scenario = file.build(1).unwrap();
        assert_eq!(scenario.tables()[0].indexes.len(), 1);
    }

    /// The example files under workloads/scenarios/ parse and build.
    #[test]
    fn example_files_parse() {
        // Cargo sets the variable when it runs a test; the compile-time value names the checkout
        // the binary was built in, which a shared build cache may have built elsewhere.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let dir = std::path::Path::new(&manifest_dir).join("scenarios");
        let mut parsed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let file = ScenarioFile::parse(&text, "example").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                file.build(1).unwrap();
                parsed += 1;
            }
        }
        assert!(parsed >= 6, "{parsed} example files");
    }

    /// Each mistake gets a message that names what is wrong and where.
    #[test]
    fn mistakes_get_clear_errors() {
        let error = |text: &str| ScenarioFile::parse(text, "x").unwrap_err().to_string();
        let message = error("scenario = \"orders\"\n[orders]\ncustomer = 5\n");
        assert!(message.contains("unknown field `customer`") && message.contains("line 3"), "{message}");
        let message = error("scenario = \"orders\"\n[orders]\ncustomers = \"many\"\n");
        assert!(message.contains("invalid type") && message.contains("line 3"), "{message}");
        assert!(error("scenario = \"nope\"").contains("unknown scenario \"nope\""));
        assert!(
            error("scenario = \"bank\"\n[bank]\naccounts = 1\n").contains("[bank] a bank needs at least 2 accounts")
        );
        assert!(
            error("scenario = \"bank\"\n[orders]\n").contains("settings for orders given, but scenario is \"bank\"")
        );
        assert!(
            error("scenario = \"bank\"\n[[phases]]\nkind = \"run\"\nduration = \"1x\"\n").contains("duration \"1x\"")
        );
        assert!(error(
            "scenario = \"bank\"\n[[phases]]\nkind = \"run\"\nduration = \"1s\"\n[[phases]]\nkind = \"load\"\n"
        )
        .contains("load phase must be the first"));
        assert!(error("scenario = \"ycsb-a\"\n[ycsb]\nrecordcount = -1\n").contains("recordcount"));
        assert!(error("scenario = \"custom\"\n[[tables]]\nname = \"ttt\"\npartition_key = \"id:X\"\nitems = 1\n[[operations]]\nkind = \"get\"\ntable = \"ttt\"\nweight = 1\n")
            .contains("name:S or name:N"));
        assert!(error("scenario = \"custom\"\n[[tables]]\nname = \"t\"\npartition_key = \"id:S\"\nitems = 1\n[[operations]]\nkind = \"get\"\ntable = \"t\"\nweight = 1\n")
            .contains("table t: a table name is 3 to 255"));
        assert!(error("scenario = \"orders\"\n[run]\nrate = 0\n").contains("rate 0 must be above 0"));
    }
}
