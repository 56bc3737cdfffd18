//! `accuracy.svg`: accuracy by round, one line per task and system (plotters' SVG backend; no
//! fonts are needed, the SVG names a generic sans-serif family).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::EvalReport;

/// Draws the chart of `report` to `path`.
pub fn write(path: &Path, report: &EvalReport) -> anyhow::Result<()> {
    draw(path, report).map_err(|e| anyhow!("drawing {}: {e}", path.display()))
}

fn draw(path: &Path, report: &EvalReport) -> Result<(), Box<dyn std::error::Error>> {
    let rounds = report.rounds.max(1);
    let top = report
        .tables
        .iter()
        .flat_map(|t| &t.rows)
        .map(|r| r.ci95.map_or(r.accuracy, |(_, hi)| hi) * 100.0)
        .fold(10.0, f64::max);
    // The interval's top, rounded up to ten points, so small accuracies are not a flat line.
    let top = ((top / 10.0).ceil() * 10.0).min(100.0);

    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Accuracy by refinement round", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.75f64..(f64::from(rounds) + 0.25), 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc("accuracy (%)")
        .x_labels(rounds as usize + 2)
        .max_light_lines(1)
        .x_label_formatter(&|x| {
            let whole = (x - x.round()).abs() < 1e-6;
            if whole {
                format!("{}", x.round())
            } else {
                String::new()
            }
        })
        .draw()?;
    for (i, table) in report.tables.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = table
            .rows
            .iter()
            .map(|r| (f64::from(r.round), r.accuracy * 100.0))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(format!(
                "{} · {} (n={})",
                table.task, table.system, table.items
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }
    crate::plot::finish(&mut chart, &root, SeriesLabelPosition::MiddleRight)?;
    Ok(())
}
