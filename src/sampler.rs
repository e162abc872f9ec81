//! The reverse process, one step at a time: DDPM (Ho et al. 2020, Algorithm 2) and DDIM
//! (Song et al. 2021, eq. 12).
//!
//! The caller owns the loop: create a [`Sampler`] for (seed, batch, sampler, steps), call
//! [`Sampler::step`] until it returns `None`, and draw whatever it wants in between. No step
//! reads anything back from the device, so the same code runs natively and in the browser.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::UNet;
use crate::noise::{NoiseStream, batch_standard_normal};
use crate::schedule::NoiseSchedule;

/// Largest batch a sampler accepts (the page uses at most 16).
pub const MAX_BATCH: usize = 256;

/// Which reverse process to run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SamplerKind {
    /// Ancestral sampling (Ho et al. 2020, Algorithm 2), all `T` steps.
    Ddpm {
        /// The variance `sigma_t^2` of the noise added per step.
        #[serde(default)]
        variance: DdpmVariance,
    },
    /// DDIM over a subsequence of the timesteps. `eta = 0` is deterministic given `x_T`;
    /// `eta = 1` with all `T` steps is DDPM.
    Ddim {
        /// Scale of the fresh noise, `0 ..= 1` usually.
        eta: f64,
        /// Which timesteps the subsequence visits.
        #[serde(default)]
        spacing: TimestepSpacing,
    },
}

impl SamplerKind {
    /// DDPM with the default variance.
    pub fn ddpm() -> Self {
        Self::Ddpm { variance: DdpmVariance::default() }
    }

    /// DDIM with `eta` and the default spacing.
    pub fn ddim(eta: f64) -> Self {
        Self::Ddim { eta, spacing: TimestepSpacing::default() }
    }
}

/// The two choices of `sigma_t^2` in Ho et al. 2020, section 3.2: "experimentally, both had
/// similar results". Both are exact for some data: `beta_t` for `x_0 ~ N(0, I)`, `beta_tilde_t`
/// for `x_0` fixed to one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DdpmVariance {
    /// `sigma_t^2 = beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t`, the
    /// posterior variance (eq. 7; the reference code's "fixedsmall"). The default: with an
    /// exact denoiser both variances made samples equally close to the data, within the
    /// measurement's noise (`tests/sampler_quality.rs`, README).
    #[default]
    Posterior,
    /// `sigma_t^2 = beta_t` (the reference code's "fixedlarge", used for its CIFAR-10 run).
    Beta,
}

/// Which `steps` of the `T` timesteps DDIM visits (Lin et al. 2024, table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestepSpacing {
    /// `i T / steps` for `i = steps-1 .. 0`: 4 steps of 1000 visit 750, 500, 250, 0, so
    /// the run starts by treating pure noise as `x_750` (the DDIM paper's choice). The
    /// default: with an exact denoiser it made samples closer to the data than trailing at
    /// 4 and 10 steps, and equally close at 50 (`tests/sampler_quality.rs`, README).
    #[default]
    Leading,
    /// `T - 1 - i T / steps` for `i = 0 .. steps-1`: 4 steps of 1000 visit 999, 749, 499, 249,
    /// so the first step starts from the noise level `x_T` really has, and the last one
    /// jumps from `x_249` to the clean image.
    Trailing,
}

/// Everything that, with the seed and the weights, determines the sampled images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// DDPM or DDIM.
    pub kind: SamplerKind,
    /// Number of reverse steps (`T` for DDPM, `1 ..= T` for DDIM).
    pub steps: usize,
    /// Clip the predicted `x_0` to `[-1, 1]` and form the step from the clipped value, as
    /// the paper's official code does (`clip_denoised=True`). Off: the seeds' plain formula.
    pub clip_x0: bool,
}

impl SamplerConfig {
    /// DDPM over all `timesteps`, default variance, clipping on.
    pub fn ddpm(timesteps: usize) -> Self {
        Self { kind: SamplerKind::ddpm(), steps: timesteps, clip_x0: true }
    }

    /// Deterministic DDIM (`eta = 0`) with `steps` steps, default spacing, clipping on.
    pub fn ddim(steps: usize) -> Self {
        Self { kind: SamplerKind::ddim(0.0), steps, clip_x0: true }
    }

    /// The timesteps this run visits, descending (0-based).
    pub fn timesteps(&self, total: usize) -> Vec<usize> {
        match self.kind {
            SamplerKind::Ddpm { .. } => (0..total).rev().collect(),
            SamplerKind::Ddim { spacing, .. } => spaced_timesteps(total, self.steps, spacing),
        }
    }
}

/// Why a sampler could not be created.
#[derive(Debug, Error, PartialEq)]
pub enum SamplerError {
    /// DDPM runs every step of the schedule.
    #[error("DDPM runs all {timesteps} steps, got {steps}; use DDIM for fewer steps")]
    DdpmStepCount {
        /// Steps requested.
        steps: usize,
        /// Steps in the schedule.
        timesteps: usize,
    },
    /// DDIM steps must lie in `1..=T`.
    #[error("DDIM steps must be between 1 and {timesteps}, got {steps}")]
    DdimStepCount {
        /// Steps requested.
        steps: usize,
        /// Steps in the schedule.
        timesteps: usize,
    },
    /// `eta` must be a finite non-negative number.
    #[error("DDIM eta must be finite and >= 0, got {0}")]
    InvalidEta(f64),
    /// Batch size out of range.
    #[error("batch must be between 1 and {MAX_BATCH}, got {0}")]
    InvalidBatch(usize),
    /// A run can only continue from a timestep of the schedule.
    #[error("cannot continue from timestep {timestep}: the schedule has steps 0 to {last}")]
    TimestepOutOfRange {
        /// Requested 0-based timestep.
        timestep: usize,
        /// Largest 0-based timestep of the schedule.
        last: usize,
    },
    /// The image to continue from has another shape than the sampler's.
    #[error("cannot continue from an image of shape {found:?}; this run needs {expected:?}")]
    ShapeMismatch {
        /// The sampler's `[batch, channels, height, width]`.
        expected: [usize; 4],
        /// The given image's shape.
        found: [usize; 4],
    },
}

/// Anything that predicts the noise in `x_t`; the [`UNet`] in practice.
pub trait NoisePredictor {
    /// # Shapes
    /// - x: `[batch, channels, height, width]`; timesteps: `[batch]`; output: like `x`.
    fn predict_noise(&self, x: Tensor<4>, timesteps: Tensor<1>) -> Tensor<4>;
}

impl NoisePredictor for UNet {
    fn predict_noise(&self, x: Tensor<4>, timesteps: Tensor<1>) -> Tensor<4> {
        self.forward(x, timesteps)
    }
}

/// What one reverse step produced. All tensors are `[batch, channels, height, width]`; they
/// are handles to values the step computes anyway, so returning them costs nothing until
/// they are read back.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// The timestep `t` this step started from (0-based; the image is now `x_{t-1}`).
    pub timestep: usize,
    /// The new, less noisy image.
    pub x: Tensor<4>,
    /// The model's output `eps_theta(x_t, t)`.
    pub predicted_noise: Tensor<4>,
    /// The noise the step used: the model's output, or with clipping on the noise consistent
    /// with the clipped `x_0` (`(x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)`).
    pub effective_noise: Tensor<4>,
    /// The model's current guess of the final image (clipped if clipping is on).
    pub predicted_x0: Tensor<4>,
    /// The fresh noise `sigma_t z` added this step (zeros at the last step and for DDIM eta 0).
    pub added_noise: Tensor<4>,
}

/// The state of one reverse process: `x_t` and the timesteps still to go.
#[derive(Debug, Clone)]
pub struct Sampler {
    schedule: NoiseSchedule,
    config: SamplerConfig,
    seed: u64,
    shape: [usize; 4],
    /// The timesteps to visit, descending.
    timesteps: Vec<usize>,
    /// Index into `timesteps` of the next step.
    position: usize,
    x: Tensor<4>,
}

impl Sampler {
    /// Starts from `x_T ~ N(0, I)` drawn with `seed` (image `i` uses `seed + i`).
    pub fn new(
        schedule: &NoiseSchedule,
        config: SamplerConfig,
        seed: u64,
        batch: usize,
        image: [usize; 3],
        device: &Device,
    ) -> Result<Self, SamplerError> {
        let total = schedule.timesteps();
        match config.kind {
            SamplerKind::Ddpm { .. } if config.steps != total => {
                return Err(SamplerError::DdpmStepCount { steps: config.steps, timesteps: total });
            }
            SamplerKind::Ddim { .. } if config.steps == 0 || config.steps > total => {
                return Err(SamplerError::DdimStepCount { steps: config.steps, timesteps: total });
            }
            SamplerKind::Ddim { eta, .. } if !(eta.is_finite() && eta >= 0.0) => {
                return Err(SamplerError::InvalidEta(eta));
            }
            _ => {}
        }
        if batch == 0 || batch > MAX_BATCH {
            return Err(SamplerError::InvalidBatch(batch));
        }
        let [channels, height, width] = image;
        let shape = [batch, channels, height, width];
        let x = noise_tensor(seed, shape, NoiseStream::Initial, device);
        Ok(Self {
            schedule: schedule.clone(),
            config,
            seed,
            shape,
            timesteps: config.timesteps(total),
            position: 0,
            x,
        })
    }

    /// Replaces the current image, e.g. to continue from an `x_t` made elsewhere (a forward
    /// jump with `q_sample`, or a frame of an earlier run).
    ///
    /// # Panics
    /// If `x` does not have the sampler's shape.
    pub fn with_x(mut self, x: Tensor<4>) -> Self {
        assert_eq!(x.dims(), self.shape, "with_x needs an image of the sampler's shape");
        self.x = x;
        self
    }

    /// Continues the reverse process from an image `x` at the noise level of 0-based
    /// `timestep` (made with `q_sample` from a real image, or a frame of an earlier run):
    /// the next step starts from `timestep`, then visits this run's remaining timesteps below
    /// it (every one for DDPM, the DDIM subsequence otherwise). Replaces any steps taken.
    pub fn continue_from(mut self, timestep: usize, x: Tensor<4>) -> Result<Self, SamplerError> {
        let last = self.schedule.timesteps() - 1;
        if timestep > last {
            return Err(SamplerError::TimestepOutOfRange { timestep, last });
        }
        if x.dims() != self.shape {
            return Err(SamplerError::ShapeMismatch { expected: self.shape, found: x.dims() });
        }
        let below =
            self.config.timesteps(self.schedule.timesteps()).into_iter().filter(|&t| t < timestep);
        self.timesteps = std::iter::once(timestep).chain(below).collect();
        self.position = 0;
        self.x = x;
        Ok(self)
    }

    /// The current image `x_t` (`x_T` before the first step, the result after the last).
    pub fn x(&self) -> &Tensor<4> {
        &self.x
    }

    /// The configuration this sampler runs.
    pub fn config(&self) -> SamplerConfig {
        self.config
    }

    /// The timestep the next [`Sampler::step`] starts from, or `None` when done.
    pub fn next_timestep(&self) -> Option<usize> {
        self.timesteps.get(self.position).copied()
    }

    /// Steps taken so far.
    pub fn completed_steps(&self) -> usize {
        self.position
    }

    /// Steps in the whole run.
    pub fn total_steps(&self) -> usize {
        self.timesteps.len()
    }

    /// Takes one reverse step; `None` when the run is complete.
    pub fn step(&mut self, model: &impl NoisePredictor) -> Option<StepOutput> {
        let t = self.next_timestep()?;
        let previous = self.timesteps.get(self.position + 1).copied();
        let device = self.x.device();
        let x_t = self.x.clone();
        let predicted_noise =
            model.predict_noise(x_t.clone(), Tensor::full([self.shape[0]], t as f32, &device));
        let fresh_noise = || noise_tensor(self.seed, self.shape, NoiseStream::Step(t), &device);
        let input = StepInput { t, x_t, predicted_noise, clip_x0: self.config.clip_x0 };
        let output = match self.config.kind {
            SamplerKind::Ddpm { variance } => {
                ddpm_step(&self.schedule, input, variance, fresh_noise)
            }
            SamplerKind::Ddim { eta, .. } => {
                ddim_step(&self.schedule, input, previous, eta, fresh_noise)
            }
        };
        self.x = output.x.clone();
        self.position += 1;
        Some(output)
    }
}

/// `steps` timesteps evenly spread over `0..total`, descending; all of them when equal.
pub fn spaced_timesteps(total: usize, steps: usize, spacing: TimestepSpacing) -> Vec<usize> {
    match spacing {
        TimestepSpacing::Leading => (0..steps).map(|i| i * total / steps).rev().collect(),
        TimestepSpacing::Trailing => (0..steps).map(|i| total - 1 - i * total / steps).collect(),
    }
}

/// Uploads the seeded noise for `stream` as a tensor of `shape`.
fn noise_tensor(seed: u64, shape: [usize; 4], stream: NoiseStream, device: &Device) -> Tensor<4> {
    let per_image = shape[1] * shape[2] * shape[3];
    let values = batch_standard_normal(seed, shape[0], stream, per_image);
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// What every reverse step starts from.
struct StepInput {
    /// 0-based timestep of `x_t`.
    t: usize,
    /// The current image.
    x_t: Tensor<4>,
    /// `eps_theta(x_t, t)`.
    predicted_noise: Tensor<4>,
    /// Whether to clip the predicted `x_0` to `[-1, 1]`.
    clip_x0: bool,
}

/// `x_0 = sqrt(1 / alpha_bar_t) x_t - sqrt(1 / alpha_bar_t - 1) eps` (eq. 4 solved for `x_0`).
fn predict_x0(alpha_bar: f64, x_t: Tensor<4>, noise: Tensor<4>) -> Tensor<4> {
    x_t * (1.0 / alpha_bar).sqrt() as f32 - noise * (1.0 / alpha_bar - 1.0).sqrt() as f32
}

/// `eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)`: the noise consistent with `x_0`.
fn noise_from_x0(alpha_bar: f64, x_t: Tensor<4>, x0: Tensor<4>) -> Tensor<4> {
    (x_t - x0 * alpha_bar.sqrt() as f32) * (1.0 / (1.0 - alpha_bar).sqrt()) as f32
}

/// One DDPM step from `t` (Algorithm 2): `x_{t-1} = mu_theta(x_t, t) + sigma_t z`.
fn ddpm_step(
    schedule: &NoiseSchedule,
    input: StepInput,
    variance: DdpmVariance,
    fresh_noise: impl FnOnce() -> Tensor<4>,
) -> StepOutput {
    let StepInput { t, x_t, predicted_noise, clip_x0 } = input;
    let raw_x0 = predict_x0(schedule.alpha_bars[t], x_t.clone(), predicted_noise.clone());
    let (mean, predicted_x0, effective_noise) = if clip_x0 {
        // Posterior mean of q(x_{t-1} | x_t, x_0) (eq. 7) with the clipped x_0.
        let x0 = raw_x0.clamp(-1.0, 1.0);
        let mean = x0.clone() * schedule.posterior_mean_coef_x0[t] as f32
            + x_t.clone() * schedule.posterior_mean_coef_xt[t] as f32;
        (mean, x0.clone(), noise_from_x0(schedule.alpha_bars[t], x_t, x0))
    } else {
        // The seeds' formula (eq. 11): 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps).
        let noise_weight = schedule.betas[t] / schedule.sqrt_one_minus_alpha_bars[t];
        let mean = (x_t - predicted_noise.clone() * noise_weight as f32)
            * (1.0 / schedule.alphas[t].sqrt()) as f32;
        (mean, raw_x0, predicted_noise.clone())
    };
    let sigma_squared = match variance {
        DdpmVariance::Posterior => schedule.posterior_variance[t],
        DdpmVariance::Beta => schedule.betas[t],
    };
    // No noise at the last step: x_0 is the mean (Algorithm 2, "z = 0 if t = 1").
    let added_noise =
        if t > 0 { fresh_noise() * sigma_squared.sqrt() as f32 } else { mean.zeros_like() };
    let x = mean + added_noise.clone();
    StepOutput { timestep: t, x, predicted_noise, effective_noise, predicted_x0, added_noise }
}

/// One DDIM step from `t` to `previous` (`None`: to the clean image), Song et al. 2021 eq. 12:
/// `x_prev = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z`,
/// `sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)` (eq. 16).
fn ddim_step(
    schedule: &NoiseSchedule,
    input: StepInput,
    previous: Option<usize>,
    eta: f64,
    fresh_noise: impl FnOnce() -> Tensor<4>,
) -> StepOutput {
    let StepInput { t, x_t, predicted_noise, clip_x0 } = input;
    let alpha_bar = schedule.alpha_bars[t];
    let alpha_bar_prev = previous.map_or(1.0, |p| schedule.alpha_bars[p]);
    let sigma = eta
        * ((1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev)).sqrt();
    let direction_weight = (1.0 - alpha_bar_prev - sigma * sigma).max(0.0).sqrt();
    let raw_x0 = predict_x0(alpha_bar, x_t.clone(), predicted_noise.clone());
    let (mean, predicted_x0, effective_noise) = if clip_x0 {
        let x0 = raw_x0.clamp(-1.0, 1.0);
        let noise = noise_from_x0(alpha_bar, x_t, x0.clone());
        let mean =
            x0.clone() * alpha_bar_prev.sqrt() as f32 + noise.clone() * direction_weight as f32;
        (mean, x0, noise)
    } else {
        // Same formula with x_0 substituted and the coefficients combined in f64: the unclipped
        // x_0 is x_t / sqrt(alpha_bar_t), up to 157x larger than x_t, and forming it in f32
        // first would lose digits.
        let x_weight = (alpha_bar_prev / alpha_bar).sqrt();
        let noise_weight =
            direction_weight - (alpha_bar_prev * (1.0 - alpha_bar) / alpha_bar).sqrt();
        let mean = x_t * x_weight as f32 + predicted_noise.clone() * noise_weight as f32;
        (mean, raw_x0, predicted_noise.clone())
    };
    let added_noise = if sigma > 0.0 { fresh_noise() * sigma as f32 } else { mean.zeros_like() };
    let x = mean + added_noise.clone();
    StepOutput { timestep: t, x, predicted_noise, effective_noise, predicted_x0, added_noise }
}
