//! SVG plots of soak runs (cargo feature `plot`): live bytes per iteration with the fitted trend line, and threads and
//! fds when they were measured. People read a trend faster than a table.

use std::path::PathBuf;

use plotters::prelude::*;

use crate::longrun::soak::{SoakReport, SoakSample, Trend};

/// Where plots go: `NO_LEAK_PLOT_DIR`, else `<target>/no_leak/` when the test binary lives in a
/// cargo target directory, else the system's temporary directory.
fn plot_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("NO_LEAK_PLOT_DIR") {
        return PathBuf::from(d);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(target) = exe
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "target"))
        {
            return target.join("no_leak");
        }
    }
    std::env::temp_dir().join("no_leak")
}

/// A file name from a test name: `a::b` becomes `a__b`.
fn file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{clean}.soak.svg")
}

/// Writes the plot of a soak and returns its path, or `None` if it could not be written.
pub(crate) fn write_soak(name: &str, soak: &SoakReport) -> Option<PathBuf> {
    let svg = soak_svg(name, soak)?;
    let dir = plot_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(file_name(name));
    std::fs::write(&path, svg).ok()?;
    Some(path)
}

type Series<'a> = (
    &'a str,
    Option<Trend>,
    Box<dyn Fn(&SoakSample) -> Option<i64> + 'a>,
    RGBColor,
);

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The measured series: bytes always; threads and fds when measured.
fn panels(soak: &SoakReport) -> Vec<Series<'static>> {
    let mut panels: Vec<Series> = vec![(
        "live heap bytes",
        soak.bytes,
        Box::new(|x: &SoakSample| Some(x.bytes)),
        BLUE,
    )];
    if soak.threads.is_some() {
        let threads = |x: &SoakSample| x.threads;
        panels.push((
            "live threads",
            soak.threads,
            Box::new(threads),
            RGBColor(0, 128, 0),
        ));
    }
    if soak.fds.is_some() {
        let fds = |x: &SoakSample| x.fds;
        panels.push(("open fds", soak.fds, Box::new(fds), RGBColor(128, 0, 128)));
    }
    panels
}

/// The SVG text: one panel per measured series, under a headline with the trend.
pub(crate) fn soak_svg(name: &str, soak: &SoakReport) -> Option<String> {
    if soak.samples.len() < 2 {
        return None;
    }
    let panels = panels(soak);
    let (width, panel_h) = (900u32, 300u32);
    let mut out = String::new();
    {
        let height = panel_h * panels.len() as u32 + 40;
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let (title, body) = root.split_vertically(40);
        let headline = match soak.bytes {
            Some(t) => format!(
                "{name}: {:+.3} B/iteration (R² {:.2}) over {} iterations",
                t.slope, t.r_squared, soak.iterations
            ),
            None => name.to_string(),
        };
        title.titled(&headline, ("sans-serif", 18)).ok()?;
        let areas = body.split_evenly((panels.len(), 1));
        for (series, area) in panels.iter().zip(areas.iter()) {
            draw_panel(area, series, &soak.samples)?;
        }
        root.present().ok()?;
    }
    Some(out)
}

/// One series' samples and its fitted trend line.
fn draw_panel(area: &Area, (label, trend, value, color): &Series, s: &[SoakSample]) -> Option<()> {
    let (x0, x1) = (s[0].iteration as f64, s[s.len() - 1].iteration as f64);
    let ys: Vec<(f64, f64)> = s
        .iter()
        .filter_map(|x| value(x).map(|v| (x.iteration as f64, v as f64)))
        .collect();
    let (lo, hi) = ys.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let pad = ((hi - lo) * 0.1).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(40)
        .x_label_area_size(35)
        .y_label_area_size(80)
        .caption(*label, ("sans-serif", 15))
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), (lo - pad)..(hi + pad))
        .ok()?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc(*label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_labels(((hi - lo + 2.0 * pad) as usize + 1).clamp(2, 10))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .ok()?;
    let color = *color;
    let legend = move |c: RGBColor| {
        move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
    };
    chart
        .draw_series(LineSeries::new(ys.iter().copied(), color.stroke_width(2)))
        .ok()?
        .label("samples")
        .legend(legend(color));
    if let Some(t) = trend {
        let line = [
            (x0, t.intercept + t.slope * x0),
            (x1, t.intercept + t.slope * x1),
        ];
        chart
            .draw_series(LineSeries::new(line, RED.stroke_width(2)))
            .ok()?
            .label(format!(
                "trend {:+.4}/iteration, R² {:.2}",
                t.slope, t.r_squared
            ))
            .legend(legend(RED));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_name("soak::leaky case/1"),
            "soak__leaky_case_1.soak.svg"
        );
    }
}
