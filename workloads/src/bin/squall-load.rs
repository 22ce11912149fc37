//! `squall-load`: drives a DynamoDB-compatible endpoint with a scenario and writes a report.
//!
//! ```text
//! squall-load --endpoint http://127.0.0.1:8000 --workload ycsb-a --rate 5000 --duration 60s \
//!     --clients 32 --out results/ycsb-a --seed 42
//! squall-load compare results/run-1 results/run-2 --plot compare.svg
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use squall_workloads::driver::{ClientConfig, Credentials, DynamoClient};
use squall_workloads::op::{create_tables, settle, unsupported_operations, SETTLE_WAIT};
use squall_workloads::plot::{self, Window};
use squall_workloads::recorder::{Outcome, Recorder};
use squall_workloads::report;
use squall_workloads::runner::{self, Arrivals, LoopMode, Progress, RateSegment, RunSettings};
use squall_workloads::scenario::file::{format_duration, parse_duration, Mode, Phase, ScenarioFile};
use squall_workloads::scenario::Scenario;
use squall_workloads::tally::{select, unknown_operations, ErrorEntry, ErrorTally, Tallied};
use squall_workloads::ycsb::YcsbSpec;

/// How often the progress bar is refreshed.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Bound on the load phase.
const LOAD_DURATION_MAX: Duration = Duration::from_secs(3600);
/// Shortest per-request timeout of the invariant check's reads: a full-table Scan page is not
/// a measured operation, and a slow server may need longer for one than the run's timeout.
const CHECK_TIMEOUT_MIN: Duration = Duration::from_secs(60);

#[derive(Parser, Debug)]
#[command(
    name = "squall-load",
    version,
    about = "Drive a DynamoDB-compatible endpoint with a workload and report latencies"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Plot the latency percentiles of several runs' report directories on one chart.
    Compare {
        /// Report directories written by earlier runs.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Only this operation (default: every operation of each run).
        #[arg(long)]
        operation: Option<String>,
        /// The chart: .png or .svg.
        #[arg(long)]
        plot: PathBuf,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum ModeArg {
    Open,
    Closed,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum ArrivalsArg {
    Constant,
    Poisson,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Endpoint, http://host:port.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    endpoint: String,
    /// A built-in scenario (ycsb-a..ycsb-f, orders, sessions, feed, bank) or a scenario .toml file.
    #[arg(long, default_value = "ycsb-a")]
    workload: String,
    /// A YCSB workload property file, applied over the YCSB workload named by --workload.
    #[arg(long)]
    ycsb_workload: Option<PathBuf>,
    /// Open loop (arrivals at --rate) or closed loop (--clients clients back to back).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Spacing of open-loop arrivals.
    #[arg(long, value_enum)]
    arrivals: Option<ArrivalsArg>,
    /// Target rate, operations per second (open loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Length of the run phase (replaces the file's run and ramp phases), e.g. 60s.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Closed-loop clients; also the connection pool size.
    #[arg(long)]
    clients: Option<usize>,
    /// Most operations in flight in an open loop; later arrivals wait and their wait counts.
    #[arg(long, default_value_t = runner::IN_FLIGHT_MAX_DEFAULT)]
    in_flight_max: usize,
    /// Pause between a closed-loop client's operations.
    #[arg(long, value_parser = parse_duration)]
    think_time: Option<Duration>,
    /// Start of the run left out of the results.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Most run-phase operations.
    #[arg(long)]
    operations: Option<u64>,
    /// Per-request timeout; a request without an answer by then counts as timed out.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Report directory.
    #[arg(long, default_value = "squall-load-report")]
    out: PathBuf,
    /// Skip creating tables and loading (they exist from an earlier run).
    #[arg(long)]
    no_load: bool,
    /// Delete and recreate tables that already exist.
    #[arg(long)]
    recreate: bool,
    /// Skip the invariant check at the end.
    #[arg(long)]
    no_check: bool,
    /// No plots.
    #[arg(long)]
    no_plots: bool,
    /// A window to shade on the timeline plot, START:END:LABEL in seconds since the run's start.
    #[arg(long = "fault-window", value_parser = parse_window)]
    fault_windows: Vec<Window>,
    /// Access key id requests are signed with (any value works with a local server).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "squall")]
    access_key: String,
    /// Secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", default_value = "squall", hide_env_values = true)]
    secret_key: String,
    /// Region of the signature.
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
}

fn parse_window(text: &str) -> Result<Window, String> {
    let mut parts = text.splitn(3, ':');
    let mut number = |what| -> Result<f64, String> {
        parts
            .next()
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("fault window {text:?}: {what} must be seconds; expected START:END:LABEL"))
    };
    let start_s = number("START")?;
    let end_s = number("END")?;
    let label = parts.next().unwrap_or("").to_owned();
    if end_s <= start_s {
        return Err(format!("fault window {text:?}: END must be after START"));
    }
    Ok(Window { start_s, end_s, label })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the runtime")?;
    match cli.command {
        Some(Command::Compare { runs, operation, plot }) => compare(&runs, operation.as_deref(), &plot),
        None => runtime.block_on(run(cli.run)),
    }
}

fn scenario_file(args: &RunArgs) -> Result<ScenarioFile> {
    let mut file = if args.workload.ends_with(".toml") || Path::new(&args.workload).is_file() {
        let path = Path::new(&args.workload);
        let text = std::fs::read_to_string(path).with_context(|| format!("read scenario file {}", path.display()))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        ScenarioFile::parse(&text, &name).with_context(|| format!("scenario file {}", path.display()))?
    } else {
        ScenarioFile::builtin(&args.workload)?
    };
    if let Some(path) = &args.ycsb_workload {
        let text = std::fs::read_to_string(path).with_context(|| format!("read YCSB workload {}", path.display()))?;
        let base = match file.scenario.strip_prefix("ycsb-") {
            Some(letter) => format!("workload{letter}"),
            None if file.scenario == "ycsb" => file.base.clone().unwrap_or_else(|| "workloada".into()),
            None => bail!("--ycsb-workload needs a YCSB --workload (ycsb-a..ycsb-f), not {}", file.scenario),
        };
        let mut spec = YcsbSpec::builtin(&base)?;
        spec.apply_properties(&text).with_context(|| format!("YCSB workload {}", path.display()))?;
        spec.validate().with_context(|| format!("YCSB workload {}", path.display()))?;
        let properties: toml::Table = spec
            .to_properties()
            .lines()
            .filter_map(|line| line.split_once('='))
            .filter(|(name, _)| *name != "workload")
            .map(|(name, value)| (name.to_owned(), toml::Value::String(value.to_owned())))
            .collect();
        file.scenario = "ycsb".into();
        file.base = Some(base);
        file.ycsb = Some(properties);
        file.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    Ok(file)
}

struct Plan {
    settings: RunSettings,
    clients: usize,
    rate: f64,
}

fn plan(args: &RunArgs, file: &ScenarioFile) -> Result<Plan> {
    let section = &file.run;
    let mode = match (args.mode, section.mode) {
        (Some(ModeArg::Closed), _) | (None, Some(Mode::Closed)) => Mode::Closed,
        _ => Mode::Open,
    };
    let rate = args.rate.or(section.rate).unwrap_or(1000.0);
    if !rate.is_finite() || rate <= 0.0 {
        bail!("--rate must be above 0");
    }
    let clients = args.clients.or(section.clients).unwrap_or(16);
    if clients == 0 {
        bail!("--clients must be at least 1");
    }
    let phases: Vec<RateSegment> = file
        .phases
        .iter()
        .filter_map(|phase| match *phase {
            Phase::Load => None,
            Phase::Run { duration, rate: phase_rate } => {
                Some(RateSegment::constant(duration, phase_rate.unwrap_or(rate)))
            }
            Phase::Ramp { duration, from, to } => Some(RateSegment { duration, rate_start: from, rate_end: to }),
        })
        .collect();
    let schedule = match args.duration.or(if phases.is_empty() { section.duration } else { None }) {
        Some(duration) => vec![RateSegment::constant(duration, rate)],
        None if !phases.is_empty() => phases,
        None => vec![RateSegment::constant(Duration::from_secs(60), rate)],
    };
    let duration: Duration = schedule.iter().map(|s| s.duration).sum();
    let arrivals = match (args.arrivals, section.arrivals) {
        (Some(ArrivalsArg::Poisson), _) => Arrivals::Poisson,
        (Some(ArrivalsArg::Constant), _) => Arrivals::Constant,
        (None, Some(arrivals)) => arrivals,
        (None, None) => Arrivals::Constant,
    };
    let mode = match mode {
        Mode::Open => LoopMode::Open { arrivals, schedule, in_flight_max: args.in_flight_max },
        Mode::Closed => LoopMode::Closed {
            clients,
            think_time: args.think_time.or(section.think_time).unwrap_or(Duration::ZERO),
            duration,
        },
    };
    let settings = RunSettings {
        mode,
        operations_max: args.operations.or(section.operations),
        warmup: args.warmup.or(section.warmup).unwrap_or(Duration::ZERO),
        seed: args.seed,
        drain_timeout: args.timeout + Duration::from_secs(1),
    };
    if settings.warmup >= settings.duration() {
        bail!(
            "the warm-up ({}) must be shorter than the run ({})",
            format_duration(&settings.warmup),
            format_duration(&settings.duration())
        );
    }
    Ok(Plan { settings, clients, rate })
}

fn progress_bar(length: Option<u64>, message: &str) -> ProgressBar {
    let bar = match length {
        Some(length) => ProgressBar::new(length),
        None => ProgressBar::new_spinner(),
    };
    let template = "{msg:>8} [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} ops ({per_sec}) {prefix}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// Refreshes `bar` from `progress` until the returned handle is aborted.
fn follow(bar: ProgressBar, progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            bar.set_position(progress.completed.load(Ordering::Relaxed));
            bar.set_prefix(format!("{} failed", progress.failed.load(Ordering::Relaxed)));
            tokio::time::sleep(PROGRESS_INTERVAL).await;
        }
    })
}

async fn run(args: RunArgs) -> Result<()> {
    let file = scenario_file(&args)?;
    let plan = plan(&args, &file)?;
    let scenario = file.build(args.seed)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("create report directory {}", args.out.display()))?;
    println!("squall-load: scenario {} against {} with seed {}", scenario.name(), args.endpoint, args.seed);

    let config = ClientConfig::new(&args.endpoint)
        .with_credentials(Credentials::new(&args.access_key, &args.secret_key))
        .with_region(&args.region)
        .with_request_timeout(args.timeout)
        .with_connections_max(plan.clients);
    let client = DynamoClient::new(config.clone()).context("client")?;
    let check_client =
        DynamoClient::new(config.with_request_timeout(args.timeout.max(CHECK_TIMEOUT_MIN))).context("client")?;
    // Which calls failed, and how, by DynamoDB operation: the load and the run are counted apart.
    let tally = ErrorTally::new();
    let api = Tallied::new(client.clone(), tally.clone());

    // An endpoint that lacks an operation the scenario needs cannot run it: say so now rather
    // than report a run whose every such call failed.
    let needed = scenario.operations();
    let unsupported = unsupported_operations(&client, needed.iter().copied())
        .await
        .with_context(|| format!("probe {} for the operations {} needs", args.endpoint, scenario.name()))?;
    if !unsupported.is_empty() {
        bail!(
            "{} does not implement {} (it answers {}), which scenario {} needs",
            args.endpoint,
            unsupported.join(", "),
            squall_workloads::tally::UNKNOWN_OPERATION,
            scenario.name()
        );
    }

    let progress = Arc::new(Progress::default());
    let stop = progress.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing the operations in flight");
            stop.stop.store(true, Ordering::Relaxed);
        }
    });

    let mut scenario = scenario;
    let mut load_summary = None;
    let mut load_errors = Vec::new();
    if !args.no_load {
        create_tables(&client, &scenario.tables(), args.recreate).await.context("set up tables")?;
    }
    if !args.no_load && (file.has_load_phase() || file.phases.is_empty()) {
        let bar = progress_bar(None, "load");
        let ticker = follow(bar.clone(), progress.clone());
        let loaded = runner::load(api.clone(), scenario, plan.clients, LOAD_DURATION_MAX, progress.clone()).await?;
        ticker.abort();
        bar.finish();
        let failed = progress.failed.load(Ordering::Relaxed);
        load_errors = tally.take();
        if failed > 0 {
            eprintln!("warning: {failed} load operations failed");
            eprint!("{}", errors_table(&select(&load_errors, false), "failed"));
        }
        load_summary = Some(loaded.recorder.summary(loaded.end_us));
        scenario = loaded.workload;
    }

    let run_progress = Arc::new(Progress::default());
    let stop = progress.clone();
    let run_stop = run_progress.clone();
    tokio::spawn(async move {
        // Forwards an interrupt during the load to the run.
        loop {
            if stop.stop.load(Ordering::Relaxed) {
                run_stop.stop.store(true, Ordering::Relaxed);
                break;
            }
            tokio::time::sleep(PROGRESS_INTERVAL).await;
        }
    });
    let expected = match &plan.settings.mode {
        LoopMode::Open { schedule, .. } => {
            Some(schedule.iter().map(|s| (s.rate_start + s.rate_end) / 2.0 * s.duration.as_secs_f64()).sum::<f64>()
                as u64)
        }
        LoopMode::Closed { .. } => None,
    };
    let expected = match (expected, plan.settings.operations_max) {
        (Some(e), Some(m)) => Some(e.min(m)),
        (e, m) => e.or(m),
    };
    let bar = progress_bar(expected, "run");
    let ticker = follow(bar.clone(), run_progress.clone());
    let result = runner::run(api.clone(), scenario, &plan.settings, run_progress.clone()).await?;
    ticker.abort();
    bar.finish();
    let calls = tally.take();
    let (errors, refusals) = (select(&calls, false), select(&calls, true));

    let summary = result.recorder.summary(result.end_us);
    let uncorrected = result.uncorrected.summary(result.end_us);
    println!();
    print!("{}", report::table(&summary));
    println!(
        "measured {:.1} s after a {} warm-up; {} operations issued, {} abandoned",
        summary.measured_seconds,
        format_duration(&plan.settings.warmup),
        result.issued,
        result.abandoned
    );
    print!("{}", errors_table(&errors, "failed"));
    print!("{}", errors_table(&refusals, "refused (conditions that evaluated false)"));

    let check = if args.no_check {
        None
    } else {
        let tables = result.workload.tables();
        if !errors.is_empty() || tables.iter().any(|t| !t.indexes.is_empty()) {
            let settled = settle(&check_client, &tables).await.context("read the database until it settles")?;
            if !settled {
                eprintln!("warning: the tables still changed after {SETTLE_WAIT:?}; checking them as they are");
            }
        }
        let check = result.workload.check(&check_client).await.context("read the database for the invariant check")?;
        print!("{check}");
        Some(check)
    };

    let series = result.recorder.series();
    let summary_json = json!({
        "scenario": scenario_name(&result.workload),
        "seed": args.seed,
        "endpoint": args.endpoint,
        "settings": {
            "run": plan.settings,
            "clients": plan.clients,
            "rate": plan.rate,
            "timeout": format_duration(&args.timeout),
            "load": !args.no_load,
            "scenario_file": file,
        },
        "issued": result.issued,
        "abandoned": result.abandoned,
        "results": summary,
        "uncorrected": uncorrected,
        "load": load_summary,
        "errors": errors,
        "refusals": refusals,
        "load_errors": select(&load_errors, false),
        "invariants": check,
        "series": series,
    });
    let out = &args.out;
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary_json)?)
        .context("write summary.json")?;
    std::fs::write(out.join("series.csv"), report::series_csv(&series)).context("write series.csv")?;
    report::write_hgrms(out, &result.recorder, &result.uncorrected).context("write .hgrm files")?;
    report::write_histograms(out, &result.recorder).context("write histograms")?;
    if !args.no_plots {
        if let Err(error) = plots(out, scenario_name(&result.workload), &result.recorder, &args.fault_windows) {
            eprintln!("warning: plots not drawn: {error}");
        }
    }
    println!("report written to {}", out.display());
    // An operation the endpoint does not know that the probe did not catch: the run measured
    // nothing of it.
    let unknown: std::collections::BTreeSet<&str> =
        unknown_operations(&load_errors).into_iter().chain(unknown_operations(&errors)).collect();
    if !unknown.is_empty() {
        bail!(
            "{} does not implement {} (it answered {}), which scenario {} needs",
            args.endpoint,
            unknown.into_iter().collect::<Vec<_>>().join(", "),
            squall_workloads::tally::UNKNOWN_OPERATION,
            scenario_name(&result.workload)
        );
    }
    if check.as_ref().is_some_and(|c| !c.passed()) {
        bail!(
            "invariants of {} violated (see above and {}/summary.json)",
            scenario_name(&result.workload),
            out.display()
        );
    }
    Ok(())
}

/// Calls that `what` (failed, refused) by DynamoDB operation and error, with an example of each;
/// empty when there is none.
fn errors_table(entries: &[ErrorEntry], what: &str) -> String {
    let mut text = String::new();
    if entries.is_empty() {
        return text;
    }
    text.push_str(&format!("calls {what}, by DynamoDB operation and error:\n"));
    for entry in entries {
        text.push_str(&format!(
            "  {:<20} {:<40} {:>8}  e.g. {}\n",
            entry.operation, entry.error, entry.count, entry.example
        ));
    }
    text
}

fn scenario_name(scenario: &Scenario) -> &str {
    scenario.name()
}

fn plots(out: &Path, name: &str, recorder: &Recorder, windows: &[Window]) -> Result<()> {
    let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = recorder
        .operations()
        .filter_map(|op| recorder.histogram(op, Outcome::Ok).map(|h| (op.to_owned(), h)))
        .collect();
    for extension in ["png", "svg"] {
        if !series.is_empty() {
            plot::percentile_curves(
                &out.join(format!("latency-percentiles.{extension}")),
                &format!("{name}: latency by percentile"),
                &series,
            )?;
        }
        plot::timeline(
            &out.join(format!("timeline.{extension}")),
            &format!("{name}: latency and throughput"),
            &recorder.series(),
            windows,
        )?;
    }
    Ok(())
}

fn compare(runs: &[PathBuf], operation: Option<&str>, plot_path: &Path) -> Result<()> {
    let mut curves = Vec::new();
    for run in runs {
        let label =
            run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| run.display().to_string());
        let mut entries: Vec<PathBuf> = std::fs::read_dir(run)
            .with_context(|| format!("read report directory {}", run.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.to_string_lossy().ends_with(".ok.histogram"))
            .collect();
        entries.sort();
        for path in entries {
            let op = path
                .file_name()
                .map(|n| n.to_string_lossy().trim_end_matches(".ok.histogram").to_owned())
                .unwrap_or_default();
            if operation.is_some_and(|wanted| report::file_name(wanted) != op) {
                continue;
            }
            curves.push((format!("{label} {op}"), report::read_histogram(&path)?));
        }
    }
    if curves.is_empty() {
        bail!(
            "no histograms of successful operations found in {}",
            runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let series: Vec<(String, &hdrhistogram::Histogram<u64>)> =
        curves.iter().map(|(label, h)| (label.clone(), h)).collect();
    plot::percentile_curves(plot_path, "latency by percentile", &series)?;
    println!("comparison of {} curves written to {}", series.len(), plot_path.display());
    Ok(())
}
