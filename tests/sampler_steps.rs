//! Single reverse steps pinned against numbers computed here, by hand, in f64: the linear
//! schedule is rebuilt from its definition (Ho et al. 2020: beta from 1e-4 to 0.02 over
//! T = 1000), and each step's formula is written out from the papers, not taken from the
//! crate. The noise predictor returns a constant, so every expected value is closed-form.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::values;
use ddpm_avatars::noise::{NoiseStream, batch_standard_normal};
use ddpm_avatars::sampler::{DdpmVariance, NoisePredictor, TimestepSpacing};
use ddpm_avatars::{NoiseSchedule, Sampler, SamplerConfig, SamplerKind, ScheduleConfig};

const T: usize = 1000;
const SEED: u64 = 21;
const EPS: f64 = 0.3;
/// The image the step starts from: one RGB image of 2 x 2 pixels, values inside and outside
/// the data range so that clipping matters.
const X_T: [f64; 12] = [-2.0, -0.5, 0.1, 1.5, 0.0, 0.7, -1.2, 3.0, 0.25, -0.05, 2.2, -3.1];

/// Predicts the same noise everywhere.
struct ConstantNoise;

impl NoisePredictor for ConstantNoise {
    fn predict_noise(&self, x: Tensor<4>, _timesteps: Tensor<1>) -> Tensor<4> {
        x.ones_like() * EPS as f32
    }
}

/// alpha_bar_t = prod_{s <= t} (1 - beta_s), beta_s = 1e-4 + (0.02 - 1e-4) s / (T - 1).
fn alpha_bar(t: usize) -> f64 {
    (0..=t).map(|s| 1.0 - (1e-4 + (0.02 - 1e-4) * s as f64 / (T - 1) as f64)).product()
}

fn beta(t: usize) -> f64 {
    1e-4 + (0.02 - 1e-4) * t as f64 / (T - 1) as f64
}

/// The seeded standard normal noise the sampler draws at step `t`.
fn z(t: usize) -> Vec<f64> {
    batch_standard_normal(SEED, 1, NoiseStream::Step(t), X_T.len())
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Runs one step of `config` from `X_T` at 0-based timestep `t`; returns the new x.
fn one_step(config: SamplerConfig, t: usize) -> Vec<f32> {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let x: Vec<f32> = X_T.iter().map(|&v| v as f32).collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [1, 3, 2, 2]), &device);
    let mut sampler = Sampler::new(&schedule, config, SEED, 1, [3, 2, 2], &device)
        .unwrap()
        .continue_from(t, x)
        .unwrap();
    let step = sampler.step(&ConstantNoise).unwrap();
    assert_eq!(step.timestep, t);
    values(&step.x)
}

fn assert_close(found: &[f32], expected: &[f64], what: &str) {
    assert_eq!(found.len(), expected.len());
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        let bound = 2e-5 * (1.0 + e.abs());
        assert!((f64::from(*f) - e).abs() <= bound, "{what}: value {i} is {f}, expected {e}");
    }
}

/// Ho et al. 2020, Algorithm 2 and eq. 7 (clip: the posterior mean with the clipped x_0).
fn ddpm_expected(t: usize, clip: bool, variance: DdpmVariance) -> Vec<f64> {
    let (abar, abar_prev, b) = (alpha_bar(t), alpha_bar(t - 1), beta(t));
    let alpha = 1.0 - b;
    let sigma2 = match variance {
        DdpmVariance::Posterior => (1.0 - abar_prev) / (1.0 - abar) * b,
        DdpmVariance::Beta => b,
    };
    X_T.iter()
        .zip(z(t))
        .map(|(&x, z)| {
            let mean = if clip {
                let x0 = ((x - (1.0 - abar).sqrt() * EPS) / abar.sqrt()).clamp(-1.0, 1.0);
                b * abar_prev.sqrt() / (1.0 - abar) * x0
                    + (1.0 - abar_prev) * alpha.sqrt() / (1.0 - abar) * x
            } else {
                (x - b / (1.0 - abar).sqrt() * EPS) / alpha.sqrt()
            };
            mean + sigma2.sqrt() * z
        })
        .collect()
}

/// Song et al. 2021, eq. 12 and 16; with clipping, eps is re-derived from the clipped x_0.
fn ddim_expected(t: usize, previous: usize, eta: f64, clip: bool) -> Vec<f64> {
    let (abar, abar_prev) = (alpha_bar(t), alpha_bar(previous));
    let sigma = eta * ((1.0 - abar_prev) / (1.0 - abar)).sqrt() * (1.0 - abar / abar_prev).sqrt();
    X_T.iter()
        .zip(z(t))
        .map(|(&x, z)| {
            let mut x0 = (x - (1.0 - abar).sqrt() * EPS) / abar.sqrt();
            let mut eps = EPS;
            if clip {
                x0 = x0.clamp(-1.0, 1.0);
                eps = (x - abar.sqrt() * x0) / (1.0 - abar).sqrt();
            }
            abar_prev.sqrt() * x0 + (1.0 - abar_prev - sigma * sigma).sqrt() * eps + sigma * z
        })
        .collect()
}

#[test]
fn one_ddpm_step_matches_algorithm_2_for_both_variances_with_and_without_clipping() {
    for variance in [DdpmVariance::Posterior, DdpmVariance::Beta] {
        for clip_x0 in [true, false] {
            let config = SamplerConfig { kind: SamplerKind::Ddpm { variance }, steps: T, clip_x0 };
            for t in [600, 999, 1] {
                let what = format!("DDPM {variance:?} clip={clip_x0} t={t}");
                assert_close(&one_step(config, t), &ddpm_expected(t, clip_x0, variance), &what);
            }
        }
    }
}

#[test]
fn the_last_ddpm_step_adds_no_noise() {
    let config = SamplerConfig { clip_x0: false, ..SamplerConfig::ddpm(T) };
    // t = 0: x_0 = (x_1 - beta_0 / sqrt(1 - alpha_bar_0) eps) / sqrt(alpha_0), nothing added.
    let b = beta(0);
    let expected: Vec<f64> = X_T
        .iter()
        .map(|&x| (x - b / (1.0 - alpha_bar(0)).sqrt() * EPS) / (1.0 - b).sqrt())
        .collect();
    assert_close(&one_step(config, 0), &expected, "DDPM last step");
}

#[test]
fn one_ddim_step_matches_eq_12_for_eta_0_half_and_1_with_and_without_clipping() {
    for spacing in [TimestepSpacing::Leading, TimestepSpacing::Trailing] {
        // 10 steps: leading visits 900, 800, ..; trailing 999, 899, ..: from 900 (resp. 999)
        // the next timestep is 800 (resp. 899).
        let (t, previous) = match spacing {
            TimestepSpacing::Leading => (900, 800),
            TimestepSpacing::Trailing => (999, 899),
        };
        for eta in [0.0, 0.5, 1.0] {
            for clip_x0 in [true, false] {
                let kind = SamplerKind::Ddim { eta, spacing };
                let config = SamplerConfig { kind, steps: 10, clip_x0 };
                let what = format!("DDIM {spacing:?} eta={eta} clip={clip_x0}");
                let expected = ddim_expected(t, previous, eta, clip_x0);
                assert_close(&one_step(config, t), &expected, &what);
            }
        }
    }
}

#[test]
fn the_last_ddim_step_lands_on_the_predicted_x0() {
    // From t to the clean image alpha_bar_prev = 1 and sigma = 0: x = x_0 whatever eta is.
    for clip_x0 in [true, false] {
        let kind = SamplerKind::Ddim { eta: 1.0, spacing: TimestepSpacing::Trailing };
        let config = SamplerConfig { kind, steps: 10, clip_x0 };
        let t = 99; // trailing's last timestep for 10 of 1000
        let abar = alpha_bar(t);
        let expected: Vec<f64> = X_T
            .iter()
            .map(|&x| {
                let x0 = (x - (1.0 - abar).sqrt() * EPS) / abar.sqrt();
                if clip_x0 { x0.clamp(-1.0, 1.0) } else { x0 }
            })
            .collect();
        assert_close(&one_step(config, t), &expected, &format!("DDIM last step clip={clip_x0}"));
    }
}
