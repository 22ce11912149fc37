//! The report directory of a run and the final table.
//!
//! ```text
//! DIR/summary.json                   settings, seed, per-operation results, invariants
//! DIR/series.csv                     one line per second: completions by outcome, p50 and p99
//! DIR/<op>.<outcome>.hgrm            latency distribution from the intended start
//! DIR/<op>.<outcome>.uncorrected.hgrm   the same from the moment each request was sent
//! DIR/*.png, DIR/*.svg               plots (see crate::plot)
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::recorder::{Outcome, Recorder, SecondSummary, Summary};

/// A file name made of `name`: characters other than letters, digits, `-`, `_` and `.` become `_`.
pub fn file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

/// Writes the `.hgrm` of every (operation, outcome) of both recorders; returns the paths.
pub fn write_hgrms(dir: &Path, corrected: &Recorder, uncorrected: &Recorder) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (recorder, suffix) in [(corrected, ""), (uncorrected, ".uncorrected")] {
        for operation in recorder.operations() {
            for outcome in Outcome::ALL {
                if let Some(text) = recorder.hgrm(operation, outcome) {
                    let path = dir.join(format!("{}.{}{suffix}.hgrm", file_name(operation), outcome.name()));
                    fs::write(&path, text)?;
                    written.push(path);
                }
            }
        }
    }
    Ok(written)
}

/// Writes every histogram of `recorder` in HdrHistogram's V2 deflate format, base64 encoded
/// (HdrHistogram's log encoding), as `<op>.<outcome>.histogram`, for later comparison of runs.
pub fn write_histograms(dir: &Path, recorder: &Recorder) -> io::Result<Vec<PathBuf>> {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
    let mut written = Vec::new();
    for operation in recorder.operations() {
        for outcome in Outcome::ALL {
            if let Some(histogram) = recorder.histogram(operation, outcome) {
                let mut bytes = Vec::new();
                V2DeflateSerializer::new()
                    .serialize(histogram, &mut bytes)
                    .map_err(|e| io::Error::other(format!("serialise histogram: {e:?}")))?;
                let path = dir.join(format!("{}.{}.histogram", file_name(operation), outcome.name()));
                fs::write(&path, base64::engine::general_purpose::STANDARD.encode(bytes))?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// Reads a histogram written by [`write_histograms`].
pub fn read_histogram(path: &Path) -> io::Result<hdrhistogram::Histogram<u64>> {
    use base64::Engine as _;
    let text = fs::read_to_string(path)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e:?}", path.display())))
}

/// The per-second series as CSV.
pub fn series_csv(series: &[SecondSummary]) -> String {
    let mut out = String::from("second,ok,error,throttled,timeout,p50_us,p99_us\n");
    for s in series {
        let _ =
            writeln!(out, "{},{},{},{},{},{},{}", s.second, s.ok, s.error, s.throttled, s.timeout, s.p50_us, s.p99_us);
    }
    out
}

/// Writes the files every run's report directory holds besides its summary: `series.csv`, the
/// `.hgrm` files of both recorders, the V2 histograms and, with `plots`, the percentile curves
/// and the timeline (with `windows` shaded) as PNG and SVG. Returns the files written and, when
/// the plots could not be drawn, why (the numbers are all in the other files, so a missing font
/// costs the charts only).
pub fn write_run_files(
    dir: &Path,
    title: &str,
    corrected: &Recorder,
    uncorrected: &Recorder,
    windows: &[crate::plot::Window],
    plots: bool,
) -> io::Result<(Vec<PathBuf>, Option<crate::plot::PlotError>)> {
    let series = corrected.series();
    let series_path = dir.join("series.csv");
    fs::write(&series_path, series_csv(&series))?;
    let mut written = vec![series_path];
    written.extend(write_hgrms(dir, corrected, uncorrected)?);
    written.extend(write_histograms(dir, corrected)?);
    let mut plot_error = None;
    if plots {
        match write_plots(dir, title, corrected, &series, windows) {
            Ok(paths) => written.extend(paths),
            Err(error) => plot_error = Some(error),
        }
    }
    Ok((written, plot_error))
}

/// Draws `latency-percentiles` (successful operations, one curve each) and `timeline` as PNG
/// and SVG.
fn write_plots(
    dir: &Path,
    title: &str,
    recorder: &Recorder,
    series: &[SecondSummary],
    windows: &[crate::plot::Window],
) -> Result<Vec<PathBuf>, crate::plot::PlotError> {
    let curves: Vec<(String, &hdrhistogram::Histogram<u64>)> = recorder
        .operations()
        .filter_map(|op| recorder.histogram(op, Outcome::Ok).map(|h| (op.to_owned(), h)))
        .collect();
    let mut written = Vec::new();
    for extension in ["png", "svg"] {
        if !curves.is_empty() {
            let path = dir.join(format!("latency-percentiles.{extension}"));
            crate::plot::percentile_curves(&path, &format!("{title}: latency by percentile"), &curves)?;
            written.push(path);
        }
        let path = dir.join(format!("timeline.{extension}"));
        crate::plot::timeline(&path, &format!("{title}: latency and throughput"), series, windows)?;
        written.push(path);
    }
    Ok(written)
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// The final table: per operation, successes with their throughput and latency percentiles (ms),
/// then the failures by kind.
pub fn table(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}",
        "operation", "ok", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "error", "thrott", "timeout"
    );
    for (name, operation) in &summary.operations {
        let count = |outcome| operation.outcomes.get(&outcome).map_or(0, |l| l.count);
        let (ok, rate, p50, p90, p99, p999, max) = match operation.outcomes.get(&Outcome::Ok) {
            Some(l) => {
                (l.count, l.throughput_ops_per_s, ms(l.p50_us), ms(l.p90_us), ms(l.p99_us), ms(l.p999_us), ms(l.max_us))
            }
            None => (0, 0.0, "-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{name:<20} {ok:>9} {rate:>10.1} {p50:>9} {p90:>9} {p99:>9} {p999:>9} {max:>9} {:>7} {:>7} {:>7}",
            count(Outcome::Error),
            count(Outcome::Throttled),
            count(Outcome::Timeout)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_files_name_every_operation() {
        let mut recorder = Recorder::new(0, 0).unwrap();
        for i in 1..=100u64 {
            recorder.record("READ-MODIFY-WRITE", Outcome::Ok, i * 10_000, i * 10_000 + i * 100);
        }
        recorder.record("read/x", Outcome::Throttled, 0, 50);
        let text = table(&recorder.summary(1_000_000));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("READ-MODIFY-WRITE") && lines[1].contains("  100 "), "{text}");
        assert!(lines[2].starts_with("read/x") && lines[2].trim_end().ends_with("0       1       0"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let written = write_hgrms(dir.path(), &recorder, &recorder).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert!(names.contains(&"READ-MODIFY-WRITE.ok.hgrm".to_owned()));
        assert!(names.contains(&"read_x.throttled.uncorrected.hgrm".to_owned()));
        assert!(series_csv(&recorder.series()).starts_with("second,ok,error"));
        let saved = write_histograms(dir.path(), &recorder).unwrap();
        let read = read_histogram(&saved[0]).unwrap();
        assert_eq!(&read, recorder.histogram("READ-MODIFY-WRITE", Outcome::Ok).unwrap());
    }
}
