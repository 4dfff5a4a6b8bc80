//! Least-squares line fitting, for trend detection.
//!
//! [`least_squares`] fits `y = intercept + slope * x` to a series of points and says how well the
//! line explains them (R², the coefficient of determination). The monitor uses it on the last
//! samples of live heap bytes; a steady leak is a line with a clearly positive slope and an R² near
//! 1, while noise (R² near 0) and a bounded cache's sawtooth (R² at most 1/k² over k whole teeth)
//! are not. It is a plain function over slices so that other modes (soak tests) can reuse it.

/// A fitted line `y = intercept + slope * x`, and how well it fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Fit {
    /// Change of `y` per unit of `x`.
    pub(crate) slope: f64,
    /// `y` at `x = 0`.
    pub(crate) intercept: f64,
    /// Coefficient of determination, in `[0, 1]`: the share of the variance of `y` that the line
    /// explains. 1 is a perfect line (a constant `y` included: a flat line fits it exactly), 0 is
    /// no linear relation at all.
    pub(crate) r_squared: f64,
}

impl Fit {
    /// What degenerate input gets: no evidence of any trend.
    fn none(mean_y: f64) -> Fit {
        Fit {
            slope: 0.0,
            intercept: mean_y,
            r_squared: 0.0,
        }
    }
}

/// Ordinary least-squares fit of `ys` against `xs` (paired by index; extra elements of the longer
/// slice are ignored).
///
/// Computed in two passes over centred values (means first, then sums of products of deviations),
/// so large offsets, such as a heap of several GiB growing by a few bytes per second or timestamps
/// far from zero, lose no precision to cancellation. R² is `1 - SS_res / SS_tot` with `SS_res`
/// summed from the actual residuals, clamped to `[0, 1]`.
///
/// Degenerate input gives `slope = 0`, `intercept = mean of ys` (0 when empty) and `r2 = 0`: fewer
/// than two points, or all `xs` equal (no line through a vertical set of points is defined), or a
/// non-finite value. A constant `ys` with distinct `xs` is a perfect flat line: `slope = 0`,
/// `r2 = 1`.
pub(crate) fn least_squares(xs: &[f64], ys: &[f64]) -> Fit {
    let n = xs.len().min(ys.len());
    let (xs, ys) = (&xs[..n], &ys[..n]);
    if n == 0 {
        return Fit::none(0.0);
    }
    let nf = n as f64;
    let mean_x = xs.iter().sum::<f64>() / nf;
    let mean_y = ys.iter().sum::<f64>() / nf;
    if n < 2 || !mean_x.is_finite() || !mean_y.is_finite() {
        return Fit::none(if mean_y.is_finite() { mean_y } else { 0.0 });
    }
    let (mut sxx, mut sxy, mut syy) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in xs.iter().zip(ys) {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx == 0.0 || !sxx.is_finite() || !sxy.is_finite() || !syy.is_finite() {
        return Fit::none(mean_y);
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    if syy == 0.0 {
        // Every y is the same: the flat line through them is exact.
        return Fit {
            slope: 0.0,
            intercept: mean_y,
            r_squared: 1.0,
        };
    }
    let ss_res: f64 = xs
        .iter()
        .zip(ys)
        .map(|(&x, &y)| {
            // The residual from centred values, as precise as the sums above.
            let r = (y - mean_y) - slope * (x - mean_x);
            r * r
        })
        .sum();
    let r2 = (1.0 - ss_res / syy).clamp(0.0, 1.0);
    Fit {
        slope,
        intercept,
        r_squared: r2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    /// A deterministic pseudo-random sequence in [-1, 1) (xorshift64*).
    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                let v = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
                (v as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn a_known_line_is_recovered_exactly() {
        let xs: Vec<f64> = (0..50).map(|i| i as f64 * 0.25).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 2.0 + 3.0 * x).collect();
        let f = least_squares(&xs, &ys);
        assert!(close(f.slope, 3.0, 1e-12), "{f:?}");
        assert!(close(f.intercept, 2.0, 1e-12), "{f:?}");
        assert!(close(f.r_squared, 1.0, 1e-12), "{f:?}");
        // A falling line is just as perfect a fit.
        let down: Vec<f64> = xs.iter().map(|x| 100.0 - 7.5 * x).collect();
        let f = least_squares(&xs, &down);
        assert!(
            close(f.slope, -7.5, 1e-12) && close(f.r_squared, 1.0, 1e-12),
            "{f:?}"
        );
    }

    #[test]
    fn a_small_example_by_hand() {
        // x̄ = 1.5, ȳ = 2.5, Sxy = 4, Sxx = 5: slope 0.8, intercept 1.3;
        // residuals -0.3, 0.9, -0.9, 0.3: SS_res = 1.8, SS_tot = 5, R² = 0.64.
        let f = least_squares(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]);
        assert!(close(f.slope, 0.8, 1e-15), "{f:?}");
        assert!(close(f.intercept, 1.3, 1e-15), "{f:?}");
        assert!(close(f.r_squared, 0.64, 1e-15), "{f:?}");
    }

    #[test]
    fn large_offsets_lose_no_precision() {
        // 8 GiB live, growing 3 bytes per second, timestamps around a day into the run.
        let xs: Vec<f64> = (0..30).map(|i| 86_400.0 + i as f64 * 0.5).collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|x| 8.0 * (1u64 << 30) as f64 + 3.0 * (x - 86_400.0))
            .collect();
        let f = least_squares(&xs, &ys);
        assert!(close(f.slope, 3.0, 1e-9), "{f:?}");
        assert!(f.r_squared > 0.999_999, "{f:?}");
    }

    #[test]
    fn flat_noise_has_no_trend() {
        for seed in 1..=200 {
            let xs: Vec<f64> = (0..30).map(|i| i as f64).collect();
            let ys: Vec<f64> = noise(seed, 30)
                .iter()
                .map(|e| 1_000_000.0 + 4096.0 * e)
                .collect();
            let f = least_squares(&xs, &ys);
            // With 30 independent points, R² above 0.5 has a chance of about 1e-5; these seeds are
            // fixed, so the bound is a statement about them, not a flaky probability.
            assert!(f.r_squared < 0.5, "seed {seed}: {f:?}");
            // The slope is bounded by noise over the span, far below the growth of a leak that
            // adds the noise's amplitude every sample.
            assert!(f.slope.abs() < 4096.0 / 2.0, "seed {seed}: {f:?}");
        }
    }

    #[test]
    fn a_sawtooth_over_whole_teeth_fits_poorly() {
        // A bounded cache: fills by 1 KiB per sample up to 10 entries, then is cleared. Over k
        // whole teeth the fitted line explains about 1/k² of the variance.
        let tooth = 10;
        for teeth in 2..=6 {
            let n = tooth * teeth;
            let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let ys: Vec<f64> = (0..n).map(|i| ((i % tooth) * 1024) as f64).collect();
            let f = least_squares(&xs, &ys);
            let bound = 1.0 / (teeth * teeth) as f64 + 0.01;
            assert!(f.r_squared <= bound, "{teeth} teeth: {f:?}, bound {bound}");
            // Every phase of the window, not just whole teeth from the start.
            for shift in 1..tooth {
                let ys: Vec<f64> = (0..n)
                    .map(|i| (((i + shift) % tooth) * 1024) as f64)
                    .collect();
                let f = least_squares(&xs, &ys);
                assert!(f.r_squared < 0.3, "{teeth} teeth, shift {shift}: {f:?}");
            }
        }
    }

    #[test]
    fn a_leak_under_noise_still_fits_well() {
        // 1 KiB per sample with noise of ±1 KiB: a clear trend.
        let xs: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let ys: Vec<f64> = noise(7, 30)
            .iter()
            .enumerate()
            .map(|(i, e)| 500_000.0 + 1024.0 * i as f64 + 1024.0 * e)
            .collect();
        let f = least_squares(&xs, &ys);
        assert!(close(f.slope, 1024.0, 0.1), "{f:?}");
        assert!(f.r_squared > 0.95, "{f:?}");
    }

    #[test]
    fn degenerate_input_shows_no_trend() {
        assert_eq!(least_squares(&[], &[]), Fit::none(0.0));
        assert_eq!(least_squares(&[1.0], &[5.0]), Fit::none(5.0));
        assert_eq!(
            least_squares(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]),
            Fit::none(2.0)
        );
        assert_eq!(least_squares(&[0.0, f64::NAN], &[1.0, 2.0]).r_squared, 0.0);
        // Unequal lengths: the extra points are ignored.
        let f = least_squares(&[0.0, 1.0, 2.0, 99.0], &[0.0, 2.0, 4.0]);
        assert!(
            close(f.slope, 2.0, 1e-15) && close(f.r_squared, 1.0, 1e-15),
            "{f:?}"
        );
        // A constant series is a perfect flat line.
        let f = least_squares(&[0.0, 1.0, 2.0], &[7.0, 7.0, 7.0]);
        assert_eq!((f.slope, f.intercept, f.r_squared), (0.0, 7.0, 1.0));
    }
}
