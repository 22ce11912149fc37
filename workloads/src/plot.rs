//! Charts of a run with plotters, as PNG or SVG (chosen by the file extension):
//!
//! - [`percentile_curves`]: latency by percentile (HdrHistogram's classic plot, x axis in
//!   "nines"), one curve per series — one run's operations, or several runs compared;
//! - [`timeline`]: latency (p50, p99) and throughput per second, with fault windows shaded.
//!
//! Text needs a TrueType font: plotters' bitmap backend has no font of its own and the project
//! depends on no system font library. [`load_font`] reads one file (`SQUALL_PLOT_FONT`, or the
//! usual DejaVu and Liberation paths) once per process.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::recorder::SecondSummary;

/// Environment variable naming the font file for plot text.
pub const FONT_ENV: &str = "SQUALL_PLOT_FONT";
/// Font files tried when the variable is not set.
pub const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];
/// Chart size in pixels.
pub const CHART_SIZE: (u32, u32) = (1200, 700);
/// Deepest percentile plotted: 99.999 % (five nines).
pub const NINES_MAX: f64 = 5.0;

const FAMILY: &str = "sans-serif";

/// A line of the timeline: its label, colour and the value it takes from each second.
type Line = (&'static str, RGBColor, fn(&SecondSummary) -> u64);
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    // Four more, so that a comparison of four runs of two operations each repeats no colour.
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Why a chart was not drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No usable font.
    #[error("no font for plot text: set {FONT_ENV} to a .ttf file ({0})")]
    Font(String),
    /// The extension is neither .png nor .svg.
    #[error("plot file {0} must end in .png or .svg")]
    Format(String),
    /// Nothing to plot.
    #[error("nothing to plot")]
    Empty,
    /// Drawing or writing failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// A time window to shade on a timeline, in seconds since the start, with its label (a fault).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// Label.
    pub label: String,
}

/// Registers the plot font once; later calls return the first result.
pub fn load_font() -> Result<(), PlotError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let candidates: Vec<String> = match std::env::var(FONT_ENV) {
                Ok(path) => vec![path],
                Err(_) => FONT_PATHS.iter().map(|p| p.to_string()).collect(),
            };
            for path in &candidates {
                if let Ok(bytes) = std::fs::read(path) {
                    // Registered fonts must live for the process: leaked once.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                        return Ok(());
                    }
                }
            }
            Err(format!("tried {}", candidates.join(", ")))
        })
        .clone()
        .map_err(PlotError::Font)
}

macro_rules! with_backend {
    ($path:expr, |$root:ident| $body:expr) => {{
        load_font()?;
        let path: &Path = $path;
        let shown = path.display().to_string();
        let fail = |message: String| PlotError::Draw { path: shown.clone(), message };
        match path.extension().and_then(|e| e.to_str()) {
            Some("png") => {
                let $root = BitMapBackend::new(path, CHART_SIZE).into_drawing_area();
                $body.map_err(|e| fail(e.to_string()))?;
                $root.present().map_err(|e| fail(e.to_string()))?;
            }
            Some("svg") => {
                let $root = SVGBackend::new(path, CHART_SIZE).into_drawing_area();
                $body.map_err(|e| fail(e.to_string()))?;
                $root.present().map_err(|e| fail(e.to_string()))?;
            }
            _ => return Err(PlotError::Format(shown)),
        }
        Ok(())
    }};
}

fn nines_label(nines: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let text = format!("{percent:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// The (nines, latency ms) points of a histogram up to [`NINES_MAX`].
fn curve(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let steps = 200;
    (0..=steps)
        .map(|i| {
            let x = NINES_MAX * f64::from(i) / f64::from(steps);
            let quantile = 1.0 - 10f64.powf(-x);
            (x, histogram.value_at_quantile(quantile) as f64 / 1000.0)
        })
        .collect()
}

/// Latency by percentile, one curve per `(label, histogram)` (microsecond histograms).
pub fn percentile_curves(path: &Path, title: &str, series: &[(String, &Histogram<u64>)]) -> Result<(), PlotError> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(label, histogram)| (label.clone(), curve(histogram)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    if curves.is_empty() {
        return Err(PlotError::Empty);
    }
    let y_max = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(0.0, f64::max).max(0.001) * 1.1;
    with_backend!(path, |root| draw_curves(&root, title, &curves, y_max))
}

fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    curves: &[(String, Vec<(f64, f64)>)],
    y_max: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 26))
        .margin(20)
        .margin_right(50)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..NINES_MAX, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(6)
        .x_label_formatter(&|x| nines_label(*x))
        .label_style((FAMILY, 15))
        .draw()?;
    for (i, (label, points)) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FAMILY, 15))
        .draw()?;
    Ok(())
}

/// Latency (p50 and p99 of successes) and throughput per second, one panel each, with `windows`
/// shaded and labelled on both.
pub fn timeline(path: &Path, title: &str, series: &[SecondSummary], windows: &[Window]) -> Result<(), PlotError> {
    if series.is_empty() {
        return Err(PlotError::Empty);
    }
    let x_max = series.iter().map(|s| s.second + 1).max().unwrap_or(1) as f64;
    let x_max = windows.iter().map(|w| w.end_s).fold(x_max, f64::max);
    with_backend!(path, |root| draw_timeline(&root, title, series, windows, 0.0..x_max))
}

fn draw_timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[SecondSummary],
    windows: &[Window],
    x_range: Range<f64>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = root.titled(title, (FAMILY, 26))?;
    let (top, bottom) = root.split_vertically(CHART_SIZE.1 as i32 / 2 - 20);
    let latency_max = series.iter().map(|s| s.p99_us).max().unwrap_or(1).max(1) as f64 / 1000.0 * 1.1;
    let throughput_max =
        series.iter().map(|s| s.ok + s.error + s.throttled + s.timeout).max().unwrap_or(1).max(1) as f64 * 1.1;
    let panels: [(&DrawingArea<DB, Shift>, &str, f64); 2] =
        [(&top, "latency (ms)", latency_max), (&bottom, "operations per second", throughput_max)];
    for (panel, (area, y_desc, y_max)) in panels.into_iter().enumerate() {
        let mut chart = ChartBuilder::on(area)
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.clone(), 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(if panel == 1 { "seconds since start" } else { "" })
            .y_desc(y_desc)
            .label_style((FAMILY, 14))
            .draw()?;
        for window in windows {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(window.start_s, 0.0), (window.end_s, y_max)],
                RGBColor(255, 160, 0).mix(0.25).filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                window.label.clone(),
                (window.start_s, y_max * 0.97),
                (FAMILY, 14).into_font().color(&BLACK),
            )))?;
        }
        let at = |s: &SecondSummary| s.second as f64 + 0.5;
        if panel == 0 {
            let lines: [Line; 2] = [("p50", PALETTE[0], |s| s.p50_us), ("p99", PALETTE[1], |s| s.p99_us)];
            for (label, color, value) in lines {
                chart
                    .draw_series(LineSeries::new(
                        series.iter().filter(|s| s.ok > 0).map(|s| (at(s), value(s) as f64 / 1000.0)),
                        color.stroke_width(2),
                    ))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
        } else {
            let lines: [Line; 2] =
                [("ok", PALETTE[2], |s| s.ok), ("failed", PALETTE[1], |s| s.error + s.throttled + s.timeout)];
            for (label, color, value) in lines {
                chart
                    .draw_series(LineSeries::new(
                        series.iter().map(|s| (at(s), value(s) as f64)),
                        color.stroke_width(2),
                    ))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FAMILY, 14))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_label_percentiles() {
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(1.0), "90%");
        assert_eq!(nines_label(3.0), "99.9%");
    }

    #[test]
    fn charts_are_written_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for i in 1..=10_000u64 {
            histogram.record(i * 10).unwrap();
        }
        let series: Vec<SecondSummary> = (0..10)
            .map(|second| SecondSummary {
                second,
                ok: 100 + second,
                error: second % 2,
                throttled: 0,
                timeout: 0,
                p50_us: 1_000,
                p99_us: 5_000,
            })
            .collect();
        let windows = [Window { start_s: 3.0, end_s: 5.0, label: "zone a down".into() }];
        for extension in ["png", "svg"] {
            let curves = dir.path().join(format!("curves.{extension}"));
            percentile_curves(&curves, "latency", &[("run 1".into(), &histogram), ("run 2".into(), &histogram)])
                .unwrap();
            let line = dir.path().join(format!("timeline.{extension}"));
            timeline(&line, "timeline", &series, &windows).unwrap();
            assert!(std::fs::metadata(&curves).unwrap().len() > 1_000);
            assert!(std::fs::metadata(&line).unwrap().len() > 1_000);
        }
        let svg = std::fs::read_to_string(dir.path().join("timeline.svg")).unwrap();
        assert!(svg.contains("zone a down"), "the fault window is labelled");
        assert!(matches!(timeline(&dir.path().join("x.jpg"), "t", &series, &[]), Err(PlotError::Format(_))));
        assert!(matches!(timeline(&dir.path().join("x.png"), "t", &[], &[]), Err(PlotError::Empty)));
    }
}
