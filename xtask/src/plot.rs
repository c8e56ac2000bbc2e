//! PNG figures: training curves, ranked bars and labelled image grids (plotters, bundled font).
use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use dada_train::HistoryRow;

static FONT: Once = Once::new();

/// Registers the bundled DejaVu Sans as plotters' "sans-serif" (once).
fn font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        let _ = register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

/// Training curves: train / validation loss, training accuracy, temperature, by step.
pub fn curves(path: &Path, history: &[HistoryRow]) -> Result<()> {
    font();
    let root = BitMapBackend::new(path, (1500, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((1, 3));
    let n = history.len().max(2) as f64;
    let steps: Vec<f64> = history.iter().map(|r| r.step as f64).collect();
    type Series<'a> = Vec<(&'a str, Vec<f64>, RGBColor)>;
    let specs: [(&str, Series); 3] = [
        (
            "loss",
            vec![
                ("train (augmented)", history.iter().map(|r| r.train_loss as f64).collect(), BLUE),
                ("validation", history.iter().map(|r| r.val_loss as f64).collect(), RED),
            ],
        ),
        ("training accuracy", vec![("train", history.iter().map(|r| r.train_acc as f64).collect(), BLUE)]),
        ("temperature", vec![("temperature", history.iter().map(|r| r.temperature).collect(), GREEN)]),
    ];
    for (panel, (title, series)) in panels.iter().zip(specs) {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (_, ys, _) in &series {
            for &y in ys {
                if y.is_finite() {
                    lo = lo.min(y);
                    hi = hi.max(y);
                }
            }
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..n, (lo - pad)..(hi + pad))
            .map_err(err)?;
        chart.configure_mesh().x_desc("step").draw().map_err(err)?;
        for (name, ys, color) in series {
            chart
                .draw_series(LineSeries::new(steps.iter().copied().zip(ys), color.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// A horizontal bar chart of `(label, value)`, in the given order (top first).
pub fn bars(area: &DrawingArea<BitMapBackend, plotters::coord::Shift>, title: &str, items: &[(String, f64)]) -> Result<()> {
    font();
    // the axis spans 0 and every value (values may be negative: bars then grow left of 0)
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max);
    let min = items.iter().map(|i| i.1).fold(0.0, f64::min);
    let pad = ((max - min) * 0.1).max(1e-9);
    let (min, max) = (if min < 0.0 { min - pad } else { 0.0 }, max + pad);
    let n = items.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(130)
        .build_cartesian_2d(min..max, (0..n).into_segmented())
        .map_err(err)?;
    let labels: Vec<String> = items.iter().map(|i| i.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(k) => n.checked_sub(1 + *k).and_then(|i| labels.get(i)).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(err)?;
    chart
        .draw_series(items.iter().enumerate().map(|(k, (_, v))| {
            let y = n - 1 - k;
            Rectangle::new([(0.0, SegmentValue::Exact(y)), (*v, SegmentValue::Exact(y + 1))], BLUE.mix(0.7).filled())
        }))
        .map_err(err)?;
    Ok(())
}

/// One labelled row of images for [`image_grid`]: each image is (C=3, H, W) f32 in [0, 1].
pub struct GridRow {
    /// Text above each image (one per image) or a row title.
    pub labels: Vec<String>,
    /// The images, planar RGB f32 in [0, 1], with their height and width.
    pub images: Vec<(Vec<f32>, usize, usize)>,
}

/// Draws images in a grid with a caption under each, scaled up `scale` times (nearest).
pub fn draw_grid(area: &DrawingArea<BitMapBackend, plotters::coord::Shift>, title: &str, rows: &[GridRow], scale: usize) -> Result<()> {
    font();
    area.fill(&WHITE).map_err(err)?;
    area.draw(&Text::new(title.to_string(), (10, 8), ("sans-serif", 22).into_font())).map_err(err)?;
    let cell_w = rows.iter().flat_map(|r| r.images.iter().map(|i| i.2)).max().unwrap_or(32) * scale + 16;
    let cell_h = rows.iter().flat_map(|r| r.images.iter().map(|i| i.1)).max().unwrap_or(32) * scale + 24;
    for (r, row) in rows.iter().enumerate() {
        for (c, (img, h, w)) in row.images.iter().enumerate() {
            let (x0, y0) = (10 + c * cell_w, 40 + r * cell_h);
            let hw = h * w;
            for y in 0..*h {
                for x in 0..*w {
                    let px = |ch: usize| (img[ch * hw + y * w + x].clamp(0.0, 1.0) * 255.0).round() as u8;
                    let color = RGBColor(px(0), px(1), px(2));
                    let (px0, py0) = ((x0 + x * scale) as i32, (y0 + y * scale) as i32);
                    area.draw(&Rectangle::new([(px0, py0), (px0 + scale as i32, py0 + scale as i32)], color.filled()))
                        .map_err(err)?;
                }
            }
            if let Some(label) = row.labels.get(c) {
                area.draw(&Text::new(label.clone(), (x0 as i32, (y0 + h * scale + 3) as i32), ("sans-serif", 13).into_font()))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// A whole PNG of one grid.
pub fn image_grid(path: &Path, title: &str, rows: &[GridRow], scale: usize) -> Result<()> {
    let cols = rows.iter().map(|r| r.images.len()).max().unwrap_or(1);
    let (h, w) = rows.first().and_then(|r| r.images.first()).map(|i| (i.1, i.2)).unwrap_or((32, 32));
    let width = (20 + cols * (w * scale + 16)) as u32;
    let height = (50 + rows.len() * (h * scale + 24)) as u32;
    let root = BitMapBackend::new(path, (width.max(400), height)).into_drawing_area();
    draw_grid(&root, title, rows, scale)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One panel for [`curves_generic`]: a title and named `(x, y)` series with colours.
pub type Panel<'a> = (&'a str, Vec<(&'a str, Vec<(f64, f64)>, RGBColor)>);

/// Side-by-side line panels (x: epoch or step).
pub fn curves_generic(path: &Path, title: &str, panels: &[Panel]) -> Result<()> {
    font();
    let root = BitMapBackend::new(path, (520 * panels.len() as u32, 470)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, (name, series)) in areas.iter().zip(panels) {
        let pts = series.iter().flat_map(|s| s.1.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts {
            if x.is_finite() && y.is_finite() {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            }
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let pad = ((y1 - y0) * 0.1).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(*name, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..(x1 + 1e-9).max(x0 + 1.0), (y0 - pad)..(y1 + pad))
            .map_err(err)?;
        chart.configure_mesh().draw().map_err(err)?;
        for (label, data, color) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(data.iter().copied(), color.stroke_width(2)))
                .map_err(err)?
                .label(*label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(data.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(err)?;
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
