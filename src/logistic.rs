//! The pieces of logistic regression shared by the learned parts of strip and dedup: the
//! logistic function, and the standardisation that lets one step size fit every feature
//! during training, with its inverse for the weights that ship.

/// The logistic function, `1 / (1 + e^-z)`.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// [`sigmoid`] in single precision, for models scored on `f32` features.
#[inline]
pub fn sigmoid_f32(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Per-feature mean and standard deviation over training rows whose feature 0 is the bias:
/// the bias keeps mean 0 and deviation 1, every other deviation is at least `floor` (so a
/// near-constant feature gets no huge weight).
#[derive(Debug, Clone, Copy)]
pub struct Standardiser<const N: usize> {
    pub mean: [f64; N],
    pub sd: [f64; N],
}

impl<const N: usize> Standardiser<N> {
    /// Measures the rows (iterated twice: means, then deviations).
    pub fn fit<'a, I>(rows: I, floor: f64) -> Self
    where
        I: Iterator<Item = &'a [f32; N]> + Clone,
    {
        let n = rows.clone().count().max(1) as f64;
        let mut mean = [0f64; N];
        let mut sd = [0f64; N];
        for x in rows.clone() {
            for j in 1..N {
                mean[j] += f64::from(x[j]) / n;
            }
        }
        for x in rows {
            for j in 1..N {
                sd[j] += (f64::from(x[j]) - mean[j]).powi(2) / n;
            }
        }
        if N > 0 {
            sd[0] = 1.0;
        }
        for s in sd.iter_mut().skip(1) {
            *s = s.sqrt().max(floor);
        }
        Self { mean, sd }
    }

    /// Writes the standardised row into `z` (`z[0]` = 1, the bias).
    #[inline]
    pub fn apply(&self, x: &[f32; N], z: &mut [f64; N]) {
        if N > 0 {
            z[0] = 1.0;
        }
        for j in 1..N {
            z[j] = (f64::from(x[j]) - self.mean[j]) / self.sd[j];
        }
    }

    /// Maps weights fitted on standardised rows back to weights on raw rows (`w[0]` the bias).
    pub fn raw_weights(&self, w: &[f64; N]) -> [f32; N] {
        let mut raw = [0f32; N];
        if N == 0 {
            return raw;
        }
        let mut bias = w[0];
        for j in 1..N {
            raw[j] = (w[j] / self.sd[j]) as f32;
            bias -= w[j] * self.mean[j] / self.sd[j];
        }
        raw[0] = bias as f32;
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_the_logistic_function() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-12);
        assert!(sigmoid(40.0) > 0.999_999 && sigmoid(-40.0) < 1e-6);
        assert_eq!(sigmoid_f32(0.0), 0.5);
    }

    #[test]
    fn standardised_weights_map_back_to_the_same_scores() {
        let rows = [[1.0f32, 2.0, 10.0], [1.0, 4.0, 10.0], [1.0, 6.0, 10.5]];
        let s = Standardiser::fit(rows.iter(), 1e-6);
        assert_eq!(s.sd[0], 1.0);
        assert!((s.mean[1] - 4.0).abs() < 1e-12);
        let w = [0.3f64, -1.2, 0.7];
        let raw = s.raw_weights(&w);
        for x in &rows {
            let mut z = [0f64; 3];
            s.apply(x, &mut z);
            let standardised: f64 = w.iter().zip(&z).map(|(a, b)| a * b).sum();
            let direct = f64::from(raw[0])
                + f64::from(raw[1]) * f64::from(x[1])
                + f64::from(raw[2]) * f64::from(x[2]);
            assert!(
                (standardised - direct).abs() < 1e-5,
                "{standardised} {direct}"
            );
        }
    }

    #[test]
    fn a_constant_feature_gets_the_floor() {
        let rows = [[1.0f32, 3.0], [1.0, 3.0]];
        assert_eq!(Standardiser::fit(rows.iter(), 0.05).sd[1], 0.05);
    }
}
