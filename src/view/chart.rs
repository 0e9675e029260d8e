//! A stacked bar chart as an inline SVG, drawn on the server: no script, no inline style (the
//! CSP allows neither), colours by class from `app.css` with presentation attributes as the
//! fallback. Only numbers and the caller's fixed labels go in, so nothing needs escaping.

use std::fmt::Write;

/// Width and height of the drawing's coordinate system: about a phone's width, so text drawn at
/// 12 units stays readable when the chart scales down to a 390 px screen.
const WIDTH: i64 = 360;
const HEIGHT: i64 = 200;
const LEFT: i64 = 34;
const RIGHT: i64 = 6;
const TOP: i64 = 8;
const BOTTOM: i64 = 44;

/// One series: its name in the legend, its CSS class and its fallback colour.
#[derive(Debug, Clone, Copy)]
pub struct SeriesStyle {
    /// Legend text (fixed, not user data).
    pub name: &'static str,
    /// Class on its bars and legend swatch.
    pub class: &'static str,
    /// `fill` presentation attribute, used when the stylesheet is missing.
    pub fill: &'static str,
}

/// A stacked bar chart: one bar per bucket, one segment per series.
#[derive(Debug, Clone)]
pub struct BarChart<'a> {
    /// The SVG's `<title>` and accessible name.
    pub title: &'a str,
    /// The SVG's `<desc>`.
    pub desc: String,
    /// The series, bottom segment first.
    pub series: &'a [SeriesStyle],
    /// Each bucket's axis label (fixed text: hours, dates) and its counts, one per series.
    pub bars: Vec<(String, Vec<i64>)>,
    /// Label every `label_every`th bucket, so labels do not collide.
    pub label_every: usize,
    /// Unique among the page's charts, for `aria-labelledby`.
    pub id: &'a str,
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `max`, and at least 5 so an empty chart still has
/// an axis; round numbers read well.
fn axis_top(max: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(5) {
                return m * step;
            }
        }
        step *= 10;
    }
}

impl BarChart<'_> {
    /// The chart as SVG markup.
    pub fn svg(&self) -> String {
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let max = self
            .bars
            .iter()
            .map(|(_, c)| c.iter().sum::<i64>())
            .max()
            .unwrap_or(0);
        let top = axis_top(max);
        let y = |v: i64| TOP + plot_h - v * plot_h / top;
        let id = self.id;
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" font-size="12"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"##,
            self.title, self.desc
        );
        // Grid lines and the value axis: 0, half, top.
        for v in [0, top / 2, top] {
            let _ = write!(
                s,
                r##"<line class="chart-grid" x1="{LEFT}" x2="{}" y1="{yv}" y2="{yv}" stroke="#8c959f" stroke-width="0.5"/><text class="chart-label" x="{}" y="{}" text-anchor="end" fill="currentColor">{v}</text>"##,
                WIDTH - RIGHT,
                LEFT - 4,
                y(v) + 4,
                yv = y(v),
            );
        }
        let n = self.bars.len().max(1) as i64;
        let slot = plot_w * 100 / n; // hundredths of a unit, so 24 bars fit exactly
        let bar_w = (slot * 7 / 10) as f64 / 100.0;
        for (i, (label, counts)) in self.bars.iter().enumerate() {
            let x = (LEFT * 100 + slot * i as i64 + slot * 15 / 100) as f64 / 100.0;
            let mut base = 0;
            for (style, &v) in self.series.iter().zip(counts) {
                if v > 0 {
                    let _ = write!(
                        s,
                        r##"<rect class="{}" x="{x}" y="{}" width="{bar_w}" height="{}" fill="{}"><title>{label}: {v} {}</title></rect>"##,
                        style.class,
                        y(base + v),
                        y(base) - y(base + v),
                        style.fill,
                        style.name.to_lowercase(),
                    );
                }
                base += v;
            }
            if i % self.label_every.max(1) == 0 {
                let _ = write!(
                    s,
                    r##"<text class="chart-label" x="{}" y="{}" text-anchor="middle" fill="currentColor">{label}</text>"##,
                    x + bar_w / 2.0,
                    TOP + plot_h + 14,
                );
            }
        }
        // The legend, under the axis labels.
        let legend_y = HEIGHT - 10;
        let mut lx = LEFT;
        for style in self.series {
            let _ = write!(
                s,
                r##"<rect class="{}" x="{lx}" y="{}" width="10" height="10" fill="{}"/><text class="chart-label" x="{}" y="{legend_y}" fill="currentColor">{}</text>"##,
                style.class,
                legend_y - 9,
                style.fill,
                lx + 14,
                style.name,
            );
            lx += 14 + style.name.len() as i64 * 7 + 10;
        }
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIES: [SeriesStyle; 2] = [
        SeriesStyle {
            name: "A",
            class: "a",
            fill: "#000",
        },
        SeriesStyle {
            name: "B",
            class: "b",
            fill: "#fff",
        },
    ];

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(axis_top(0), 5);
        assert_eq!(axis_top(7), 10);
        assert_eq!(axis_top(11), 20);
        assert_eq!(axis_top(1234), 2000);
    }

    #[test]
    fn bars_stack_within_the_plot_and_carry_their_numbers() {
        let chart = BarChart {
            title: "t",
            desc: "d".into(),
            series: &SERIES,
            bars: vec![("x".into(), vec![3, 1]), ("y".into(), vec![0, 0])],
            label_every: 1,
            id: "c",
        };
        let svg = chart.svg();
        assert!(svg.contains("<title>x: 3 a</title>"));
        assert!(svg.contains("<title>x: 1 b</title>"));
        assert!(!svg.contains("y: 0"), "empty segments are not drawn");
        assert!(!svg.contains("style"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
