//! A capacity plan's reports: `plan.json` (everything measured), `summary.md` (the
//! recommendation and why, as tables) and `report.html` (the same with charts drawn as inline
//! SVG, so it opens offline in any browser with nothing else beside it).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::plan::{provisioned_units, Measurement, NodeLoad, Plan, SizeResult};

/// Colours of the charts' series, in order.
const PALETTE: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// Writes `plan.json`, `summary.md` and `report.html` in `out`; returns their paths.
pub fn write(plan: &Plan, out: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let files = [
        ("plan.json", serde_json::to_string_pretty(plan).context("encode the plan")? + "\n"),
        ("summary.md", markdown(plan)),
        ("report.html", html(plan)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn title(plan: &Plan) -> String {
    let s = &plan.settings;
    format!(
        "Capacity plan: {} at {} operations/s, p99 at most {} ms{}",
        s.workload,
        s.target_rate,
        s.p99_ms,
        if s.survive_zone { ", surviving the loss of a zone" } else { "" }
    )
}

fn size_name(plan: &Plan, size: &SizeResult) -> String {
    let zones = plan.settings.zones;
    format!(
        "{zones} zones × {} node{} ({} nodes), {} partition{} per table",
        size.nodes_per_zone,
        if size.nodes_per_zone == 1 { "" } else { "s" },
        zones * size.nodes_per_zone,
        size.partitions,
        if size.partitions == 1 { "" } else { "s" }
    )
}

/// The recommendation and why, in sentences.
fn verdict(plan: &Plan) -> Vec<String> {
    let s = &plan.settings;
    let mut lines = Vec::new();
    let Some(chosen) = plan.recommendation() else {
        let largest = plan.sizes.last();
        lines.push(format!(
            "No size from {} to {} nodes per zone meets the targets.",
            s.nodes_per_zone_min, s.nodes_per_zone_max
        ));
        if let Some(largest) = largest {
            lines.push(format!(
                "The largest size tried ({}) falls short: {}.",
                size_name(plan, largest),
                largest.shortfalls.join("; ")
            ));
        }
        lines.push("Try a larger --max-nodes-per-zone, a faster profile, or a looser target.".into());
        return lines;
    };
    lines.push(format!("Recommendation: {}.", size_name(plan, chosen)));
    if let Some(up) = chosen.at_target(false, s.target_rate) {
        lines.push(format!(
            "With every zone up it serves {:.0} operations/s at p99 {:.1} ms (target {} ms), the busiest node's CPU \
             {}, disk {} and network {} busy, within the {:.0}% ceiling that leaves {}% headroom.",
            up.achieved_rate,
            up.p99_ms,
            s.p99_ms,
            percent(up.cpu_max()),
            percent(up.disk_max()),
            percent(up.network_max()),
            100.0 - s.headroom_pct,
            s.headroom_pct
        ));
    }
    if let Some(down) = chosen.at_target(true, s.target_rate) {
        lines.push(format!(
            "With zone {} down it still serves {:.0} operations/s at p99 {:.1} ms, the busiest surviving node's \
             CPU {}, disk {} and network {} busy.",
            s.zones - 1,
            down.achieved_rate,
            down.p99_ms,
            percent(down.cpu_max()),
            percent(down.disk_max()),
            percent(down.network_max())
        ));
    }
    if let Some(index) = plan.recommended.filter(|i| *i > 0) {
        let smaller = &plan.sizes[index - 1];
        lines.push(format!(
            "The next smaller size ({}) falls short: {}.",
            size_name(plan, smaller),
            smaller.shortfalls.join("; ")
        ));
    } else if s.nodes_per_zone_min > 1 {
        lines.push(format!(
            "Sizes below {} nodes per zone were not tried (--min-nodes-per-zone): a smaller one may do.",
            s.nodes_per_zone_min
        ));
    }
    if let Some(up) = chosen.at_target(false, s.target_rate) {
        lines.push(format!(
            "Equivalent provisioned capacity: {} RCU and {} WCU (the workload consumes {:.0} read and {:.0} write units \
             per second at the target rate; provisioned for {:.0}% utilisation, DynamoDB auto scaling's default target).",
            provisioned_units(up.read_units_per_s),
            provisioned_units(up.write_units_per_s),
            up.read_units_per_s,
            up.write_units_per_s,
            crate::plan::PROVISIONED_TARGET_UTILISATION * 100.0
        ));
    }
    lines
}

/// A utilisation as a percentage with one decimal.
fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn condition(m: &Measurement) -> &'static str {
    if m.zone_down {
        "zone down"
    } else {
        "all up"
    }
}

/// Every run as table rows: size, condition, rates, latencies, failures, utilisation.
fn run_rows(plan: &Plan) -> Vec<[String; 14]> {
    let mut rows = Vec::new();
    for size in &plan.sizes {
        let mut runs: Vec<&Measurement> = size.runs.iter().collect();
        runs.sort_by(|a, b| {
            (a.zone_down, a.offered_rate)
                .partial_cmp(&(b.zone_down, b.offered_rate))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for m in runs {
            rows.push([
                size.nodes_per_zone.to_string(),
                (size.nodes_per_zone * plan.settings.zones).to_string(),
                m.partitions.to_string(),
                condition(m).to_string(),
                format!("{:.0}", m.offered_rate),
                format!("{:.0}", m.achieved_rate),
                format!("{:.1}", m.p50_ms),
                format!("{:.1}", m.p99_ms),
                format!("{:.1}", m.p999_ms),
                format!("{:.2}", m.failed_pct()),
                m.throttled.to_string(),
                percent(m.cpu_max()),
                percent(m.disk_max()),
                percent(m.network_max()),
            ]);
        }
    }
    rows
}

const RUN_HEADERS: [&str; 14] = [
    "nodes/zone",
    "nodes",
    "partitions",
    "condition",
    "offered/s",
    "served/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "failed %",
    "throttled",
    "busiest CPU",
    "busiest disk",
    "busiest network",
];

/// Per-node utilisation rows of the recommended (or largest) size at the target rate.
fn node_rows(plan: &Plan) -> Vec<[String; 7]> {
    let Some(size) = plan.recommendation().or(plan.sizes.last()) else { return Vec::new() };
    let up = size.at_target(false, plan.settings.target_rate);
    let down = size.at_target(true, plan.settings.target_rate);
    let count = up.map_or(0, |m| m.nodes.len());
    (0..count)
        .map(|i| {
            let zone = i as u32 / size.nodes_per_zone.max(1);
            let pct = |m: Option<&Measurement>, of: fn(&NodeLoad) -> f64| {
                m.and_then(|m| m.nodes.get(i)).map_or("–".to_string(), |n| percent(of(n)))
            };
            [
                format!("{i} (zone {zone})"),
                pct(up, |n| n.cpu),
                pct(up, |n| n.disk),
                pct(up, |n| n.network),
                pct(down, |n| n.cpu),
                pct(down, |n| n.disk),
                pct(down, |n| n.network),
            ]
        })
        .collect()
}

const NODE_HEADERS: [&str; 7] = [
    "node",
    "CPU, all up",
    "disk, all up",
    "network, all up",
    "CPU, zone down",
    "disk, zone down",
    "network, zone down",
];

fn throttling_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for size in &plan.sizes {
        for m in &size.runs {
            if m.throttled > 0 {
                lines.push(format!(
                    "{} at {:.0}/s ({}): {} operations throttled ({:.2}%): a partition reached its own limit \
                     (3,000 read, 1,000 write units per second), or the table its quota or provisioned capacity \
                     (a partition borrows what the others leave unused, as with DynamoDB's adaptive capacity); \
                     a hot key itself needs a different key design.",
                    size_name(plan, size),
                    m.offered_rate,
                    condition(m),
                    m.throttled,
                    m.throttled as f64 * 100.0 / m.operations.max(1) as f64
                ));
            }
        }
    }
    if lines.is_empty() {
        lines.push("No operation was throttled in any run: no partition ran out of its capacity.".into());
    }
    lines
}

fn settings_lines(plan: &Plan) -> Vec<String> {
    let s = &plan.settings;
    vec![
        format!("workload: {}; target rate {} operations/s; p99 target {} ms", s.workload, s.target_rate, s.p99_ms),
        format!(
            "must survive a zone: {}; headroom {}%; failed operations allowed {}%",
            if s.survive_zone { "yes" } else { "no" },
            s.headroom_pct,
            s.failures_max_pct
        ),
        format!(
            "each run: {} simulated s measured after a {} s warm-up, seed {}, profile {}",
            s.measure.as_secs_f64(),
            s.warmup.as_secs_f64(),
            s.seed,
            s.profile.as_ref().map_or("built-in (sim/profiles/default.toml)".to_string(), |p| p.display().to_string())
        ),
        format!(
            "per-table quota: {} read and {} write units per second{}",
            s.table_max_read_units,
            s.table_max_write_units,
            if s.table_max_read_units as f64 == squall_engine::capacity::ON_DEMAND_TABLE_READ_UNITS_PER_S
                && s.table_max_write_units as f64 == squall_engine::capacity::ON_DEMAND_TABLE_WRITE_UNITS_PER_S
            {
                " (DynamoDB's default)"
            } else {
                " (above DynamoDB's default of 40,000: the account's quota must be raised to match)"
            }
        ),
        format!("commit {}; machine {}; search took {:.0} wall s", plan.commit, plan.machine, plan.wall_s),
    ]
}

/// The Markdown summary.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", title(plan));
    for line in verdict(plan) {
        let _ = writeln!(out, "{line}\n");
    }
    let table = |out: &mut String, headers: &[&str], rows: Vec<Vec<String>>| {
        let _ = writeln!(out, "| {} |", headers.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push('\n');
    };
    let _ = writeln!(out, "## Every run\n");
    table(&mut out, &RUN_HEADERS, run_rows(plan).into_iter().map(Vec::from).collect());
    let _ = writeln!(out, "## Per-node utilisation at the target rate\n");
    table(&mut out, &NODE_HEADERS, node_rows(plan).into_iter().map(Vec::from).collect());
    let _ = writeln!(out, "## Hot-partition throttling\n");
    for line in throttling_lines(plan) {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out, "\n## Settings\n");
    for line in settings_lines(plan) {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out, "\nEach run's own report (latency histograms, time series, plots) is under `runs/`.");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A chart's frame: plot area inside margins, with axes, ticks and labels.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_max: f64,
    y_max: f64,
    /// A logarithmic y axis from this (positive) value up to `y_max`; linear from 0 if `None`.
    y_log_min: Option<f64>,
}

impl Frame {
    /// The `index`th line of the legend, right of the plot: a swatch of `colour` and `name`.
    fn legend_entry(&self, svg: &mut String, index: usize, colour: &str, name: &str) {
        let legend_y = self.top + 16.0 + index as f64 * 18.0;
        let legend_x = self.width - self.right + 16.0;
        let _ = write!(
            svg,
            r#"<rect x="{legend_x}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{legend_y}">{}</text>"#,
            legend_y - 10.0,
            legend_x + 18.0,
            escape(name)
        );
    }

    fn x(&self, value: f64) -> f64 {
        self.left + value / self.x_max * (self.width - self.left - self.right)
    }

    fn y(&self, value: f64) -> f64 {
        let fraction = match self.y_log_min {
            Some(min) => (value.max(min).ln() - min.ln()) / (self.y_max.ln() - min.ln()),
            None => value / self.y_max,
        };
        self.height - self.bottom - fraction * (self.height - self.top - self.bottom)
    }

    /// The y values that get a grid line and a label: five even steps, or on a logarithmic
    /// axis 1, 2 and 5 times each power of ten in range.
    fn y_ticks(&self) -> Vec<f64> {
        let Some(min) = self.y_log_min else {
            return (0..=5).map(|tick| self.y_max * f64::from(tick) / 5.0).collect();
        };
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(min.log10().floor());
        while decade <= self.y_max {
            for step in [1.0, 2.0, 5.0] {
                let value = decade * step;
                if value >= min * 0.999 && value <= self.y_max * 1.001 {
                    ticks.push(value);
                }
            }
            decade *= 10.0;
        }
        ticks
    }

    /// The SVG opening, axes, five ticks per axis (on the x axis only when `x_ticks`) and the
    /// axis labels.
    fn open(&self, svg: &mut String, x_label: &str, y_label: &str, y_percent: bool, x_ticks: bool) {
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#,
            w = self.width,
            h = self.height
        );
        let (x0, y0, x1, y1) = (self.left, self.height - self.bottom, self.width - self.right, self.top);
        let _ = write!(svg, r##"<rect x="0" y="0" width="{}" height="{}" fill="#fff"/>"##, self.width, self.height);
        for yv in self.y_ticks() {
            let y = self.y(yv);
            let _ = write!(svg, r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#ddd"/>"##);
            let y_text = match (y_percent, self.y_log_min) {
                (true, _) => format!("{:.0}%", yv * 100.0),
                (false, Some(_)) if yv >= 1.0 => format!("{yv:.0}"),
                (false, Some(_)) => format!("{yv}"),
                (false, None) => format!("{yv:.1}"),
            };
            let _ = write!(svg, r#"<text x="{}" y="{}" text-anchor="end">{y_text}</text>"#, x0 - 6.0, y + 4.0);
        }
        if x_ticks {
            for tick in 0..=5 {
                let xv = self.x_max * f64::from(tick) / 5.0;
                let x = self.x(xv);
                let _ = write!(svg, r#"<text x="{x}" y="{}" text-anchor="middle">{xv:.0}</text>"#, y0 + 16.0);
            }
        }
        let _ = write!(svg, r##"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/>"##);
        let _ = write!(svg, r##"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>"##);
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            self.height - 6.0,
            escape(x_label)
        );
        let _ = write!(
            svg,
            r#"<text transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (y0 + y1) / 2.0,
            escape(y_label)
        );
    }
}

/// p99 against served throughput, one line per size, with the target drawn across.
fn latency_chart(plan: &Plan) -> String {
    let series: Vec<(String, Vec<(f64, f64)>)> = plan
        .sizes
        .iter()
        .map(|size| {
            let mut points: Vec<(f64, f64)> =
                size.runs.iter().filter(|m| !m.zone_down).map(|m| (m.achieved_rate, m.p99_ms)).collect();
            points.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
            let name = format!(
                "{} per zone, {}",
                plural(u64::from(size.nodes_per_zone), "node"),
                plural(size.partitions, "partition")
            );
            (name, points)
        })
        .collect();
    let x_max = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).fold(plan.settings.target_rate, f64::max) * 1.1;
    // Latencies span orders of magnitude between a size that keeps up and one that does not:
    // a logarithmic axis keeps both readable.
    let latencies = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).filter(|v| *v > 0.0);
    let (low, high) =
        latencies.fold((plan.settings.p99_ms, plan.settings.p99_ms), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y_log_min = 10f64.powf(low.log10().floor());
    let y_max = 10f64.powf((high * 1.15).log10().ceil());
    let frame = Frame {
        width: 720.0,
        height: 400.0,
        left: 64.0,
        right: 220.0,
        top: 20.0,
        bottom: 44.0,
        x_max,
        y_max,
        y_log_min: Some(y_log_min),
    };
    let mut svg = String::new();
    frame.open(&mut svg, "served operations per second", "p99 latency, ms (logarithmic)", false, true);
    let target_y = frame.y(plan.settings.p99_ms);
    let _ = write!(
        svg,
        r##"<line x1="{}" y1="{target_y}" x2="{}" y2="{target_y}" stroke="#000" stroke-dasharray="6 4"/><text x="{}" y="{}" font-size="11">p99 target</text>"##,
        frame.left,
        frame.width - frame.right,
        frame.left + 4.0,
        target_y - 4.0
    );
    for (index, (name, points)) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let path: Vec<String> = points.iter().map(|(x, y)| format!("{:.1},{:.1}", frame.x(*x), frame.y(*y))).collect();
        let _ =
            write!(svg, r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#, path.join(" "));
        for (x, y) in points {
            let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"/>"#, frame.x(*x), frame.y(*y));
        }
        frame.legend_entry(&mut svg, index, colour, name);
    }
    svg.push_str("</svg>");
    svg
}

/// Each node's CPU, disk and network utilisation at the target rate, all zones up and with a zone down.
fn utilisation_chart(plan: &Plan) -> Option<String> {
    let size = plan.recommendation().or(plan.sizes.last())?;
    let up = size.at_target(false, plan.settings.target_rate)?;
    let down = size.at_target(true, plan.settings.target_rate);
    let mut series: Vec<(&str, Vec<f64>)> = vec![
        ("CPU, all up", up.nodes.iter().map(|n| n.cpu).collect()),
        ("disk, all up", up.nodes.iter().map(|n| n.disk).collect()),
        ("network, all up", up.nodes.iter().map(|n| n.network).collect()),
    ];
    if let Some(down) = down {
        series.push(("CPU, zone down", down.nodes.iter().map(|n| n.cpu).collect()));
        series.push(("disk, zone down", down.nodes.iter().map(|n| n.disk).collect()));
        series.push(("network, zone down", down.nodes.iter().map(|n| n.network).collect()));
    }
    let nodes = up.nodes.len().max(1);
    let frame = Frame {
        width: 720.0,
        height: 360.0,
        left: 64.0,
        right: 175.0,
        top: 20.0,
        bottom: 44.0,
        x_max: nodes as f64,
        y_max: 1.0,
        y_log_min: None,
    };
    let mut svg = String::new();
    frame.open(&mut svg, "node", "utilisation", true, false);
    let ceiling = 1.0 - plan.settings.headroom_pct / 100.0;
    let ceiling_y = frame.y(ceiling);
    let _ = write!(
        svg,
        r##"<line x1="{}" y1="{ceiling_y}" x2="{}" y2="{ceiling_y}" stroke="#000" stroke-dasharray="6 4"/>"##,
        frame.left,
        frame.width - frame.right
    );
    let slot = frame.x(1.0) - frame.x(0.0);
    for node in 0..nodes {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{node}</text>"#,
            frame.x(node as f64 + 0.5),
            frame.height - frame.bottom + 16.0
        );
    }
    let bar = slot * 0.8 / series.len() as f64;
    for (s, (name, values)) in series.iter().enumerate() {
        let colour = PALETTE[s % PALETTE.len()];
        for (node, value) in values.iter().enumerate() {
            let x = frame.x(node as f64) + slot * 0.1 + bar * s as f64;
            let y = frame.y(value.min(1.0));
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{:.1}" fill="{colour}"/>"#,
                frame.y(0.0) - y
            );
        }
        frame.legend_entry(&mut svg, s, colour, name);
    }
    svg.push_str("</svg>");
    Some(svg)
}

fn html_table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut out = String::from("<table><thead><tr>");
    for header in headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// The HTML report: self-contained, no scripts, no external resources.
pub fn html(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;margin:2em auto;max-width:980px;color:#222;line-height:1.45}}\
         h1{{font-size:1.5em}} h2{{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}}\
         .verdict{{background:#f3f7fb;border-left:4px solid #1f77b4;padding:0.6em 1em}}\
         table{{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}}\
         th,td{{border:1px solid #ccc;padding:3px 7px;text-align:right}} th{{background:#f0f0f0}}\
         </style></head><body>",
        escape(&title(plan))
    );
    let _ = write!(out, "<h1>{}</h1><div class=\"verdict\">", escape(&title(plan)));
    for (index, line) in verdict(plan).iter().enumerate() {
        if index == 0 {
            let _ = write!(out, "<p><strong>{}</strong></p>", escape(line));
        } else {
            let _ = write!(out, "<p>{}</p>", escape(line));
        }
    }
    out.push_str("</div><h2>Latency against throughput</h2><p>p99 of the worst operation against the operations served per second, each size at half, one and one and a half times the target rate with every zone up.</p>");
    out.push_str(&latency_chart(plan));
    out.push_str("<h2>Per-node utilisation at the target rate</h2><p>The dashed line is the utilisation ceiling that leaves the headroom asked for.</p>");
    if let Some(chart) = utilisation_chart(plan) {
        out.push_str(&chart);
    }
    out.push_str(&html_table(&NODE_HEADERS, node_rows(plan).into_iter().map(Vec::from).collect()));
    out.push_str("<h2>Every run</h2>");
    out.push_str(&html_table(&RUN_HEADERS, run_rows(plan).into_iter().map(Vec::from).collect()));
    out.push_str("<h2>Hot-partition throttling</h2><ul>");
    for line in throttling_lines(plan) {
        let _ = write!(out, "<li>{}</li>", escape(&line));
    }
    out.push_str("</ul><h2>Settings</h2><ul>");
    for line in settings_lines(plan) {
        let _ = write!(out, "<li>{}</li>", escape(&line));
    }
    out.push_str("</ul><p>Each run's own report (latency histograms, time series, plots) is in the <code>runs/</code> folder beside this file.</p></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanSettings;
    use std::time::Duration;

    fn measurement(nodes_per_zone: u32, zone_down: bool, rate: f64, p99_ms: f64, cpu: f64) -> Measurement {
        Measurement {
            nodes_per_zone,
            partitions: 6,
            zone_down,
            offered_rate: rate,
            achieved_rate: rate,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            p999_ms: p99_ms * 2.0,
            operations: 10_000,
            throttled: if nodes_per_zone == 1 { 40 } else { 0 },
            nodes: (0..3 * nodes_per_zone)
                .map(|node| NodeLoad { node, cpu, disk: cpu / 2.0, network: cpu / 4.0 })
                .collect(),
            read_units_per_s: 900.0,
            write_units_per_s: 100.0,
            invariants_hold: true,
            ..Measurement::default()
        }
    }

    fn plan() -> Plan {
        let settings = PlanSettings {
            workload: "ycsb-b".into(),
            target_rate: 1000.0,
            p99_ms: 20.0,
            survive_zone: true,
            zones: 3,
            nodes_per_zone_min: 1,
            nodes_per_zone_max: 4,
            headroom_pct: 30.0,
            failures_max_pct: 0.1,
            measure: Duration::from_secs(10),
            warmup: Duration::from_secs(3),
            seed: 1,
            profile: None,
            table_max_read_units: 40_000,
            table_max_write_units: 40_000,
        };
        let small = SizeResult {
            nodes_per_zone: 1,
            partitions: 6,
            runs: vec![measurement(1, false, 1000.0, 45.0, 0.95), measurement(1, false, 500.0, 8.0, 0.5)],
            shortfalls: vec!["p99 45.0 ms is over the 20.0 ms target".into()],
        };
        let chosen = SizeResult {
            nodes_per_zone: 2,
            partitions: 6,
            runs: vec![
                measurement(2, false, 1000.0, 9.0, 0.45),
                measurement(2, true, 1000.0, 15.0, 0.68),
                measurement(2, false, 500.0, 6.0, 0.25),
                measurement(2, false, 1500.0, 14.0, 0.66),
            ],
            shortfalls: Vec::new(),
        };
        Plan {
            settings,
            sizes: vec![small, chosen],
            recommended: Some(1),
            commit: "abc1234".into(),
            machine: "2 cores".into(),
            wall_s: 12.0,
        }
    }

    #[test]
    fn the_summary_states_the_recommendation_why_and_the_provisioned_capacity() {
        let text = markdown(&plan());
        assert!(text.contains("Recommendation: 3 zones × 2 nodes (6 nodes), 6 partitions per table."), "{text}");
        assert!(text.contains("p99 9.0 ms (target 20 ms)"), "{text}");
        assert!(text.contains("With zone 2 down it still serves 1000 operations/s at p99 15.0 ms"), "{text}");
        assert!(text.contains(
            "The next smaller size (3 zones × 1 node (3 nodes), 6 partitions per table) falls short: p99 45.0 ms"
        ));
        assert!(text.contains("1286 RCU and 143 WCU"), "{text}");
        assert!(text.contains("40 operations throttled"), "{text}");
        assert!(text.contains("borrows what the others leave unused"), "{text}");
        assert!(
            text.contains("per-table quota: 40000 read and 40000 write units per second (DynamoDB's default)"),
            "{text}"
        );
        assert_eq!(text.matches("| 2 | 6 | 6 |").count(), 4, "every run of the chosen size is a row:\n{text}");
        assert!(text.contains("| node | CPU, all up | disk, all up | network, all up |"), "{text}");
        assert!(text.contains("busiest network"), "{text}");
    }

    #[test]
    fn the_html_report_is_self_contained_with_both_charts() {
        let page = html(&plan());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert_eq!(page.matches("<svg").count(), 2, "latency and utilisation charts");
        assert!(!page.contains("<script"), "no scripts");
        assert!(!page.contains("src=") && !page.contains("<link"), "nothing is loaded from elsewhere");
        assert!(page.contains("3 zones × 2 nodes"));
        assert_eq!(page.matches("<polyline").count(), 2, "one latency line per size");
    }

    #[test]
    fn the_latency_axis_is_logarithmic() {
        let frame = Frame {
            width: 300.0,
            height: 220.0,
            left: 50.0,
            right: 50.0,
            top: 10.0,
            bottom: 10.0,
            x_max: 1.0,
            y_max: 1000.0,
            y_log_min: Some(1.0),
        };
        // Equal ratios are equal distances: 10 ms is a third of the way from 1 ms to 1 s.
        let (bottom, top) = (frame.y(1.0), frame.y(1000.0));
        assert!((frame.y(10.0) - (bottom + (top - bottom) / 3.0)).abs() < 1e-9);
        assert!((frame.y(100.0) - (bottom + 2.0 * (top - bottom) / 3.0)).abs() < 1e-9);
        assert_eq!(frame.y_ticks(), [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
        let page = html(&plan());
        assert!(page.contains("p99 latency, ms (logarithmic)"));
    }

    #[test]
    fn without_a_passing_size_the_report_says_what_fell_short() {
        let mut plan = plan();
        plan.recommended = None;
        plan.sizes.truncate(1);
        let text = markdown(&plan);
        assert!(text.contains("No size from 1 to 4 nodes per zone meets the targets."), "{text}");
        assert!(text.contains("falls short: p99 45.0 ms"), "{text}");
        assert!(html(&plan).contains("<svg"));
    }

    #[test]
    fn a_search_that_started_above_one_node_says_smaller_sizes_were_not_tried() {
        let mut plan = plan();
        assert!(!markdown(&plan).contains("were not tried"), "every size from one node up was tried");
        plan.settings.nodes_per_zone_min = 2;
        plan.sizes.remove(0);
        plan.recommended = Some(0);
        let text = markdown(&plan);
        assert!(text.contains("Recommendation: 3 zones × 2 nodes (6 nodes)"), "{text}");
        assert!(text.contains("Sizes below 2 nodes per zone were not tried (--min-nodes-per-zone)"), "{text}");
        assert!(!text.contains("The next smaller size"), "{text}");
    }
}
