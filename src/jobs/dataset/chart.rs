//! `similarity.svg`: the histogram of the answer samples' mean pairwise similarity, one bar per
//! 0.05, with the filter's threshold drawn across it — what to look at when choosing a threshold
//! (plotters' SVG backend, as the evaluation chart).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

/// Bar width on the similarity axis.
const BIN: f64 = 0.05;

/// Counts of `sims` per bin of [`BIN`] from `lo` to 1 (a similarity of exactly 1 goes in the
/// last bin).
fn bins(sims: &[f32], lo: f64) -> Vec<(f64, usize)> {
    let n = ((1.0 - lo) / BIN).round() as usize;
    let last = n.max(1) - 1;
    let mut counts = vec![0usize; last + 1];
    for &s in sims {
        let i = ((f64::from(s) - lo) / BIN).floor().max(0.0) as usize;
        counts[i.min(last)] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (lo + i as f64 * BIN, c))
        .collect()
}

/// Draws the histogram of `sims` with `threshold` to `path`.
pub fn write(path: &Path, sims: &[f32], threshold: f32) -> anyhow::Result<()> {
    std::fs::write(path, svg(sims, threshold)?)
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

/// The histogram of `sims` with `threshold`, as SVG text.
pub fn svg(sims: &[f32], threshold: f32) -> anyhow::Result<String> {
    let mut out = String::new();
    draw(
        SVGBackend::with_string(&mut out, (800, 420)),
        sims,
        threshold,
    )
    .map_err(|e| anyhow!("drawing the similarity chart: {e}"))?;
    Ok(out)
}

fn draw(
    backend: SVGBackend<'_>,
    sims: &[f32],
    threshold: f32,
) -> Result<(), Box<dyn std::error::Error>> {
    let least = sims.iter().copied().fold(threshold, f32::min).min(0.5);
    // The axis starts at a whole bin below everything drawn.
    let lo = (f64::from(least) / BIN).floor() * BIN;
    let bars = bins(sims, lo);
    let top = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) + 1;
    let root = backend.into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Answer-sample similarity ({} records)", sims.len()),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(lo..1.0, 0usize..top)?;
    chart
        .configure_mesh()
        .x_desc("mean pairwise cosine of the k answer samples")
        .y_desc("records")
        .max_light_lines(1)
        .draw()?;
    let t = f64::from(threshold);
    chart
        .draw_series(bars.iter().map(|&(x, c)| {
            let colour = if x + BIN / 2.0 >= t { GREEN } else { RED };
            Rectangle::new([(x, 0), (x + BIN, c)], colour.mix(0.6).filled())
        }))?
        .label("records per 0.05")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], GREEN.mix(0.6).filled()));
    chart
        .draw_series(LineSeries::new([(t, 0), (t, top)], BLACK.stroke_width(2)))?
        .label(format!("threshold {threshold}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    crate::plot::finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_the_axis_and_keep_every_record() {
        let sims = [0.52, 0.81, 0.84, 0.99, 1.0];
        let b = bins(&sims, 0.5);
        assert_eq!(b.len(), 10);
        assert_eq!(b.iter().map(|x| x.1).sum::<usize>(), sims.len());
        let at = |x: f64| b.iter().find(|(lo, _)| (lo - x).abs() < 1e-9).unwrap().1;
        assert_eq!(at(0.5), 1);
        assert_eq!(at(0.8), 2);
        // 0.99 and exactly 1 share the last bin.
        assert_eq!(at(0.95), 2);
    }

    #[test]
    fn writes_an_svg_with_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("similarity.svg");
        write(&path, &[0.62, 0.81, 0.93, 0.97], 0.8).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("threshold 0.8"));
        assert!(svg.contains("4 records"));
    }
}
