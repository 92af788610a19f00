//! A latency-versus-throughput plot as a standalone SVG, written by hand (no plotting
//! dependency): both axes logarithmic, decade grid lines with 2 and 5 subdivisions, labelled
//! axes, one polyline with markers per series (every second one dashed), a legend on the
//! right. Points are joined in the order given (a sweep's step order), so a curve that bends
//! back when a target saturates shows it.

use std::fmt::Write as _;

/// One line of the plot.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (x, y) points; non-positive values cannot be placed on a log axis and are skipped.
    pub points: Vec<(f64, f64)>,
}

/// What the plot shows.
#[derive(Debug, Clone)]
pub struct Plot {
    /// Title above the plot.
    pub title: String,
    /// The x axis' label.
    pub x_label: String,
    /// The y axis' label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 60.0;
const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f",
];

/// A logarithmic axis over whole decades.
#[derive(Debug, Clone, Copy)]
struct LogAxis {
    low_decade: i32,
    high_decade: i32,
}

impl LogAxis {
    /// The smallest whole-decade range holding every value (at least one decade).
    fn covering(values: impl Iterator<Item = f64>) -> LogAxis {
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in values.filter(|v| v.is_finite() && *v > 0.0) {
            low = low.min(value);
            high = high.max(value);
        }
        if !low.is_finite() {
            return LogAxis {
                low_decade: 0,
                high_decade: 1,
            };
        }
        let low_decade = low.log10().floor() as i32;
        let high_decade = (high.log10().ceil() as i32).max(low_decade + 1);
        LogAxis {
            low_decade,
            high_decade,
        }
    }

    /// Where `value` falls, 0.0 (low end) to 1.0 (high end).
    fn fraction(&self, value: f64) -> f64 {
        (value.log10() - f64::from(self.low_decade)) / f64::from(self.high_decade - self.low_decade)
    }

    /// Grid values: every decade, and 2× and 5× within each, with whether it is a decade.
    fn ticks(&self) -> Vec<(f64, bool)> {
        let mut ticks = Vec::new();
        for decade in self.low_decade..=self.high_decade {
            let base = 10f64.powi(decade);
            ticks.push((base, true));
            if decade < self.high_decade {
                ticks.push((2.0 * base, false));
                ticks.push((5.0 * base, false));
            }
        }
        ticks
    }

    fn decades(&self) -> i32 {
        self.high_decade - self.low_decade
    }
}

/// A short label: 0.1, 2, 50, 1k, 20k, 5M.
pub fn tick_label(value: f64) -> String {
    let trim = |v: f64| {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    if value >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Plot {
    /// The SVG document.
    pub fn svg(&self) -> String {
        let placeable = |&(x, y): &(f64, f64)| x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite();
        let all = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().copied().filter(placeable))
        };
        let x_axis = LogAxis::covering(all().map(|(x, _)| x));
        let y_axis = LogAxis::covering(all().map(|(_, y)| y));
        let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let px = |x: f64| LEFT + x_axis.fraction(x) * plot_w;
        let py = |y: f64| TOP + plot_h - y_axis.fraction(y) * plot_h;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            LEFT + plot_w / 2.0,
            escape(&self.title)
        );
        // Grid and tick labels. Subdivision labels only when there are few decades.
        for (value, decade) in x_axis.ticks() {
            let x = px(value);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="{}" stroke-width="1"/>"##,
                TOP + plot_h,
                if decade { "#bbbbbb" } else { "#e6e6e6" }
            );
            if decade || x_axis.decades() <= 3 {
                let _ = writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    TOP + plot_h + 16.0,
                    tick_label(value)
                );
            }
        }
        for (value, decade) in y_axis.ticks() {
            let y = py(value);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="1"/>"##,
                LEFT + plot_w,
                if decade { "#bbbbbb" } else { "#e6e6e6" }
            );
            if decade || y_axis.decades() <= 3 {
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    LEFT - 6.0,
                    y + 4.0,
                    tick_label(value)
                );
            }
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333333"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 18.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            svg,
            r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        // The series and the legend.
        for (index, series) in self.series.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            // Every second line dashed, so lines that coincide (acknowledgement and fan-out)
            // stay visible.
            let dash = if index % 2 == 1 {
                r#" stroke-dasharray="7 4""#
            } else {
                ""
            };
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(placeable)
                .map(|(x, y)| (px(x), py(y)))
                .collect();
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline class="series" fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
                path.join(" ")
            );
            for (x, y) in &points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"/>"#
                );
            }
            let legend_y = TOP + 12.0 + index as f64 * 22.0;
            let legend_x = LEFT + plot_w + 16.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{legend_x}" y1="{legend_y}" x2="{:.1}" y2="{legend_y}" stroke="{colour}" stroke-width="2"{dash}/><circle cx="{:.1}" cy="{legend_y}" r="3.5" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                legend_x + 24.0,
                legend_x + 12.0,
                legend_x + 30.0,
                legend_y + 4.0,
                escape(&series.label)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_cover_whole_decades_and_map_logarithmically() {
        let axis = LogAxis::covering([150.0, 20_000.0].into_iter());
        assert_eq!((axis.low_decade, axis.high_decade), (2, 5));
        assert!((axis.fraction(100.0) - 0.0).abs() < 1e-9);
        assert!((axis.fraction(1000.0) - 1.0 / 3.0).abs() < 1e-9);
        assert!((axis.fraction(100_000.0) - 1.0).abs() < 1e-9);
        let single = LogAxis::covering([3.0, 3.0].into_iter());
        assert_eq!((single.low_decade, single.high_decade), (0, 1));
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.1), "0.1");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(50.0), "50");
        assert_eq!(tick_label(1000.0), "1k");
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(tick_label(5_000_000.0), "5M");
    }

    #[test]
    fn one_polyline_per_series_with_labels_escaped() {
        let plot = Plot {
            title: "p99 <latency>".into(),
            x_label: "messages/s".into(),
            y_label: "p99 ms".into(),
            series: vec![
                Series {
                    label: "sotto & co".into(),
                    points: vec![(1000.0, 1.5), (1500.0, 2.0), (0.0, 1.0)],
                },
                Series {
                    label: "forwarder".into(),
                    points: vec![(1000.0, 0.2), (1500.0, 0.3)],
                },
            ],
        };
        let svg = plot.svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="series""#).count(), 2);
        assert!(svg.contains("sotto &amp; co"));
        assert!(svg.contains("p99 &lt;latency&gt;"));
        // The point at x = 0 is skipped: 2 + 2 markers plus 2 legend markers.
        assert_eq!(svg.matches("<circle").count(), 6);
    }
}
