//! The forward (noising) process: beta schedules and every quantity derived from them.
//!
//! Timesteps are 0-based indices `t in 0..T`; index `t` is the paper's step `t + 1`
//! (Ho et al. 2020 number steps `1..=T`). The model receives the index, as the paper's
//! official code does. All tables are computed once in f64 and cast to f32 only where a
//! tensor is built.

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How the variances `beta_t` of the forward process grow with `t`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BetaSchedule {
    /// `beta_t` linear from `beta_start` to `beta_end` (Ho et al. 2020, Sec. 4: 1e-4 to 0.02).
    Linear {
        /// `beta_1`, the first (smallest) variance.
        beta_start: f64,
        /// `beta_T`, the last (largest) variance.
        beta_end: f64,
    },
    /// `alpha_bar_t = f(t)/f(0)`, `f(t) = cos^2(((t/T + s)/(1 + s)) * pi/2)`
    /// (Nichol & Dhariwal 2021, eq. 17), betas clipped to `max_beta` (0.999 in the paper).
    Cosine {
        /// Small offset `s` that keeps `beta_t` from being too small near `t = 0` (0.008).
        offset: f64,
        /// Upper clip of `beta_t`, avoiding a singularity at `t = T` (0.999).
        max_beta: f64,
    },
}

impl BetaSchedule {
    /// The DDPM paper's schedule: linear 1e-4 .. 0.02.
    pub const fn linear() -> Self {
        Self::Linear { beta_start: 1e-4, beta_end: 0.02 }
    }

    /// The improved-DDPM cosine schedule with the paper's constants.
    pub const fn cosine() -> Self {
        Self::Cosine { offset: 0.008, max_beta: 0.999 }
    }

    /// The `timesteps` values `beta_1 ..= beta_T`.
    pub fn betas(&self, timesteps: usize) -> Vec<f64> {
        match *self {
            Self::Linear { beta_start, beta_end } => {
                if timesteps == 1 {
                    return vec![beta_start];
                }
                let span = (timesteps - 1) as f64;
                (0..timesteps)
                    .map(|i| beta_start + (beta_end - beta_start) * i as f64 / span)
                    .collect()
            }
            Self::Cosine { offset, max_beta } => {
                // Nichol & Dhariwal 2021, eq. 17: beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}.
                let f = |t: f64| {
                    let angle = (t / timesteps as f64 + offset) / (1.0 + offset);
                    (angle * std::f64::consts::FRAC_PI_2).cos().powi(2)
                };
                (0..timesteps)
                    .map(|i| (1.0 - f(i as f64 + 1.0) / f(i as f64)).min(max_beta))
                    .collect()
            }
        }
    }
}

/// The schedule as stored in a weights file: which betas and how many steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// How `beta_t` grows.
    pub beta: BetaSchedule,
    /// Number of diffusion steps `T` (1000 in the paper).
    pub timesteps: usize,
}

impl Default for ScheduleConfig {
    /// The paper's setting: linear betas, `T = 1000`.
    fn default() -> Self {
        Self { beta: BetaSchedule::linear(), timesteps: 1000 }
    }
}

/// Every precomputed quantity of the forward process and of the posterior
/// `q(x_{t-1} | x_t, x_0)`, indexed by the 0-based timestep.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    /// The configuration these tables were computed from.
    pub config: ScheduleConfig,
    /// `beta_t`, the variance added at step `t`.
    pub betas: Vec<f64>,
    /// `alpha_t = 1 - beta_t`.
    pub alphas: Vec<f64>,
    /// `alpha_bar_t = prod_{s <= t} alpha_s` (paper, above eq. 4).
    pub alpha_bars: Vec<f64>,
    /// `alpha_bar_{t-1}`, with `alpha_bar_0 := 1` before the first step.
    pub alpha_bars_prev: Vec<f64>,
    /// `sqrt(alpha_bar_t)`: the weight of `x_0` in `x_t` (eq. 4).
    pub sqrt_alpha_bars: Vec<f64>,
    /// `sqrt(1 - alpha_bar_t)`: the weight of the noise in `x_t` (eq. 4).
    pub sqrt_one_minus_alpha_bars: Vec<f64>,
    /// `beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t` (eq. 7).
    pub posterior_variance: Vec<f64>,
    /// Coefficient of `x_0` in the posterior mean:
    /// `sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t)` (eq. 7).
    pub posterior_mean_coef_x0: Vec<f64>,
    /// Coefficient of `x_t` in the posterior mean:
    /// `sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)` (eq. 7).
    pub posterior_mean_coef_xt: Vec<f64>,
}

impl NoiseSchedule {
    /// Computes every table for `config` in f64.
    ///
    /// # Panics
    /// If `config.timesteps` is 0; [`ScheduleConfig::validate`] reports that as an error.
    pub fn new(config: ScheduleConfig) -> Self {
        assert!(config.timesteps > 0, "a schedule needs at least one step");
        let betas = config.beta.betas(config.timesteps);
        let alphas: Vec<f64> = betas.iter().map(|beta| 1.0 - beta).collect();
        let alpha_bars: Vec<f64> = alphas
            .iter()
            .scan(1.0, |product, alpha| {
                *product *= alpha;
                Some(*product)
            })
            .collect();
        let alpha_bars_prev: Vec<f64> =
            std::iter::once(1.0).chain(alpha_bars.iter().copied()).take(alphas.len()).collect();
        let zip3 = |f: &dyn Fn(f64, f64, f64) -> f64| -> Vec<f64> {
            (0..betas.len()).map(|t| f(betas[t], alpha_bars[t], alpha_bars_prev[t])).collect()
        };
        let posterior_variance =
            zip3(&|beta, abar, abar_prev| beta * (1.0 - abar_prev) / (1.0 - abar));
        Self {
            config,
            sqrt_alpha_bars: alpha_bars.iter().map(|a| a.sqrt()).collect(),
            sqrt_one_minus_alpha_bars: alpha_bars.iter().map(|a| (1.0 - a).sqrt()).collect(),
            posterior_mean_coef_x0: zip3(&|beta, abar, abar_prev| {
                beta * abar_prev.sqrt() / (1.0 - abar)
            }),
            posterior_mean_coef_xt: zip3(&|beta, abar, abar_prev| {
                (1.0 - abar_prev) * (1.0 - beta).sqrt() / (1.0 - abar)
            }),
            posterior_variance,
            betas,
            alphas,
            alpha_bars,
            alpha_bars_prev,
        }
    }

    /// Number of steps `T`.
    pub fn timesteps(&self) -> usize {
        self.betas.len()
    }

    /// Signal-to-noise ratio `alpha_bar_t / (1 - alpha_bar_t)` (Kingma et al. 2021).
    pub fn snr(&self, t: usize) -> f64 {
        self.alpha_bars[t] / (1.0 - self.alpha_bars[t])
    }

    /// Samples `q(x_t | x_0)` in one jump (eq. 4, the seeds' formula):
    /// `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`, each batch item at its own `t`.
    ///
    /// # Shapes
    /// - `x0`, `noise`: `[batch, channels, height, width]`; `timesteps`: `batch` indices `< T`.
    /// - output: same as `x0`.
    pub fn q_sample(&self, x0: Tensor<4>, timesteps: &[usize], noise: Tensor<4>) -> Tensor<4> {
        let signal = per_item(&self.sqrt_alpha_bars, timesteps, &x0);
        let noise_weight = per_item(&self.sqrt_one_minus_alpha_bars, timesteps, &x0);
        x0 * signal + noise * noise_weight
    }
}

/// A `[batch, 1, 1, 1]` tensor holding `table[t_i]` for each batch item, for broadcasting.
fn per_item(table: &[f64], timesteps: &[usize], like: &Tensor<4>) -> Tensor<4> {
    let values: Vec<f32> = timesteps.iter().map(|&t| table[t] as f32).collect();
    Tensor::from_data(TensorData::new(values, [timesteps.len(), 1, 1, 1]), &like.device())
}

impl ScheduleConfig {
    /// Checks that the configuration describes a usable schedule.
    pub fn validate(&self) -> Result<(), String> {
        if self.timesteps == 0 || self.timesteps > 100_000 {
            return Err(format!("timesteps must be in 1..=100000, got {}", self.timesteps));
        }
        match self.beta {
            BetaSchedule::Linear { beta_start, beta_end } => {
                let ok = |b: f64| b.is_finite() && b > 0.0 && b < 1.0;
                if !ok(beta_start) || !ok(beta_end) {
                    return Err(format!(
                        "linear betas must lie in (0, 1), got {beta_start} .. {beta_end}"
                    ));
                }
            }
            BetaSchedule::Cosine { offset, max_beta } => {
                if !(offset.is_finite() && offset >= 0.0 && max_beta > 0.0 && max_beta < 1.0) {
                    return Err(format!(
                        "cosine schedule needs offset >= 0 and max_beta in (0, 1), got {offset}, {max_beta}"
                    ));
                }
            }
        }
        Ok(())
    }
}
