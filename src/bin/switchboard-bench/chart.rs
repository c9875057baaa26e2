//! The chart of latency against data size: for each store, the p99 of search, caller lookup
//! and write-to-searchable at every size an `--out` directory holds a report for, on log
//! scales, with DESIGN's goals as flat lines. Drawn as SVG with plotters; text is left to the
//! SVG viewer, so no font is needed.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::report::{Report, value_text};

/// What the chart plots: a label, the table, the row (cells as printed) and the column.
struct Measure {
    label: &'static str,
    table: &'static str,
    row: &'static [(&'static str, &'static str)],
    column: &'static str,
}

const MEASURES: [Measure; 4] = [
    Measure {
        label: "search p99, 1 client",
        table: "search",
        row: &[("clients", "1"), ("query", "all")],
        column: "p99 ms",
    },
    Measure {
        label: "search p99, 8 clients",
        table: "search",
        row: &[("clients", "8"), ("query", "all")],
        column: "p99 ms",
    },
    Measure {
        label: "caller lookup p99, 1 client",
        table: "lookup",
        row: &[("clients", "1"), ("spelling", "all")],
        column: "p99 ms",
    },
    Measure {
        label: "write to searchable p99 at 100/s",
        table: "freshness",
        row: &[("target/s", "100")],
        column: "p99 ms",
    },
];

/// DESIGN's goals, in milliseconds.
const GOALS: [(&str, f64); 3] = [
    ("goal: caller lookup 5 ms", 5.0),
    ("goal: search 50 ms", 50.0),
    ("goal: write to searchable 1 s", 1_000.0),
];

/// One line of the chart: (interactions, milliseconds) by increasing size.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// The lines the reports give, one per measure and store; when two reports share a store and
/// size, the later one counts.
pub fn series(reports: &[Report]) -> Vec<Series> {
    let mut latest: Vec<&Report> = Vec::new();
    for report in reports {
        match latest
            .iter_mut()
            .find(|r| r.store == report.store && r.size == report.size)
        {
            Some(kept) if kept.date < report.date => *kept = report,
            Some(_) => {}
            None => latest.push(report),
        }
    }
    latest.sort_by_key(|r| r.size);
    let mut stores: Vec<&str> = latest.iter().map(|r| r.store.as_str()).collect();
    stores.sort_unstable();
    stores.dedup();
    let mut lines = Vec::new();
    for store in stores {
        for measure in &MEASURES {
            let points: Vec<(f64, f64)> = latest
                .iter()
                .filter(|r| r.store == store)
                .filter_map(|r| {
                    let table = r.table(measure.table)?;
                    let row = table.rows_where(measure.row).next()?;
                    let ms = value_text(row.get(measure.column)?).parse::<f64>().ok()?;
                    Some((r.size as f64, ms))
                })
                .collect();
            if !points.is_empty() {
                lines.push(Series {
                    label: format!("{} ({store})", measure.label),
                    points,
                });
            }
        }
    }
    lines
}

/// Draws the lines into an SVG file.
pub fn draw(path: &Path, lines: &[Series]) -> Result<()> {
    let all = || lines.iter().flat_map(|s| s.points.iter().copied());
    let (min_x, max_x) = all().fold((f64::MAX, f64::MIN), |(lo, hi), (x, _)| (lo.min(x), hi.max(x)));
    let (min_y, max_y) = all()
        .map(|(_, y)| y)
        .chain(GOALS.iter().map(|(_, g)| *g))
        .fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    if min_x > max_x {
        return Err(anyhow!("no report has a latency to chart"));
    }
    let x_range = (min_x / 2.0)..(max_x * 2.0);
    let y_range = (min_y.max(0.01) / 2.0)..(max_y * 2.0);

    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("p99 latency against data size", ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone().log_scale(), y_range.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("interactions in the store")
        .y_desc("p99, ms")
        .x_label_formatter(&|x| size_label(*x))
        .y_label_formatter(&|y| if *y >= 1.0 { format!("{y:.0}") } else { format!("{y}") })
        .draw()?;
    // Goals are grey lines named where they start, apart from the measured lines' legend.
    let goal_color = BLACK.mix(0.45);
    for (label, goal) in GOALS {
        chart.draw_series(LineSeries::new(
            [(x_range.start, goal), (x_range.end, goal)],
            goal_color.stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x_range.start * 1.05, goal),
            ("sans-serif", 12).into_font().color(&goal_color),
        )))?;
    }
    for (i, line) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(line.points.iter().map(|&(x, y)| {
            EmptyElement::at((x, y))
                + Circle::new((0, 0), 4, color.filled())
                + Text::new(format!("{y:.1}"), (6, -14), ("sans-serif", 12))
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn size_label(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{}k", x / 1e3)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Table;

    fn report(size: usize, date: &str, search_p99: &str, lookup_p99: Option<&str>) -> Report {
        let mut search = Table::new("search", "3. search", &["clients", "query", "p99 ms"]);
        search.row(vec!["1".into(), "**all**".into(), search_p99.into()]);
        search.row(vec!["1".into(), "fact*".into(), "999".into()]);
        search.row(vec!["8".into(), "**all**".into(), "80".into()]);
        let mut tables = vec![search];
        if let Some(p99) = lookup_p99 {
            let mut lookup = Table::new("lookup", "4. lookup", &["clients", "spelling", "p99 ms"]);
            lookup.row(vec!["1".into(), "**all**".into(), p99.into()]);
            tables.push(lookup);
        }
        let mut report = Report::new("sqlite", size, "abc".into(), serde_json::json!({}), 1.0, &tables);
        report.date = date.into();
        report
    }

    #[test]
    fn each_measure_is_a_line_through_the_sizes_that_measured_it() {
        let reports = [
            report(1_000_000, "2026-11-23T10:00:00Z", "30", None),
            report(100_000, "2026-11-23T09:00:00Z", "20", Some("4.5")),
            // A later run at the same size replaces the earlier one.
            report(100_000, "2026-11-23T11:00:00Z", "21", Some("4")),
        ];
        let lines = series(&reports);
        let labels: Vec<&str> = lines.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "search p99, 1 client (sqlite)",
                "search p99, 8 clients (sqlite)",
                "caller lookup p99, 1 client (sqlite)"
            ]
        );
        assert_eq!(lines[0].points, [(100_000.0, 21.0), (1_000_000.0, 30.0)]);
        assert_eq!(lines[2].points, [(100_000.0, 4.0)]);
    }

    #[test]
    fn the_chart_is_an_svg_with_every_line_and_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        let lines = series(&[
            report(100_000, "2026-11-23T09:00:00Z", "23.5", Some("11.3")),
            report(1_000_000, "2026-11-23T10:00:00Z", "41.5", Some("12.5")),
        ]);
        draw(&path, &lines).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for text in [
            "caller lookup p99, 1 client (sqlite)",
            "goal: search 50 ms",
            "41.5",
            "11.3",
            "1M",
            "100k",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(draw(&path, &[]).is_err());
    }
}
