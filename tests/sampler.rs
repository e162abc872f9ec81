//! The reverse process: DDPM and DDIM against each other, determinism of seeds, clipping.

mod common;

use burn::tensor::{Device, Tensor};
use common::{max_abs_diff, perturbed_tiny_unet, values};
use ddpm_avatars::sampler::{NoisePredictor, SamplerError, TimestepSpacing, spaced_timesteps};
use ddpm_avatars::{NoiseSchedule, Sampler, SamplerConfig, SamplerKind, ScheduleConfig};

/// A cheap stand-in for a trained noise predictor, so that full 1000-step runs take
/// milliseconds: eps = 0.8 tanh(x) + 0.3 sin(t / 100). It is not consistent with any data, so
/// without clipping its x_t drift far outside [-1, 1].
struct AnalyticPredictor;

impl NoisePredictor for AnalyticPredictor {
    fn predict_noise(&self, x: Tensor<4>, timesteps: Tensor<1>) -> Tensor<4> {
        let [batch, ..] = x.dims();
        let time_term = (timesteps / 100.0).sin().reshape([batch, 1, 1, 1]) * 0.3;
        x.tanh() * 0.8 + time_term
    }
}

/// The exact noise predictor when every pixel of the data is N(mean, std^2):
/// E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) mean) / (abar std^2 + 1 - abar).
/// A perfect model keeps x_t in range with or without clipping.
struct GaussianDataDenoiser {
    alpha_bars: Vec<f64>,
    mean: f64,
    std: f64,
}

impl NoisePredictor for GaussianDataDenoiser {
    fn predict_noise(&self, x: Tensor<4>, timesteps: Tensor<1>) -> Tensor<4> {
        let t = values(&timesteps)[0] as usize;
        let abar = self.alpha_bars[t];
        let scale = (1.0 - abar).sqrt() / (abar * self.std * self.std + 1.0 - abar);
        (x - (abar.sqrt() * self.mean) as f32) * scale as f32
    }
}

fn run_to_end(mut sampler: Sampler, model: &impl NoisePredictor) -> (Vec<Vec<f32>>, Tensor<4>) {
    let mut trajectory = Vec::new();
    while let Some(step) = sampler.step(model) {
        trajectory.push(values(&step.x));
    }
    (trajectory, sampler.x().clone())
}

#[test]
fn ddim_with_all_steps_and_eta_1_is_ddpm() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let exact =
        GaussianDataDenoiser { alpha_bars: schedule.alpha_bars.clone(), mean: 0.3, std: 0.5 };
    for clip_x0 in [true, false] {
        let ddpm = SamplerConfig { clip_x0, ..SamplerConfig::ddpm(1000) };
        let ddim = SamplerConfig { kind: SamplerKind::ddim(1.0), steps: 1000, clip_x0 };
        let image = [3, 4, 4];
        let (a, final_a) =
            run_to_end(Sampler::new(&schedule, ddpm, 11, 2, image, &device).unwrap(), &exact);
        let (b, _) =
            run_to_end(Sampler::new(&schedule, ddim, 11, 2, image, &device).unwrap(), &exact);
        assert_eq!(a.len(), 1000);
        let worst = a.iter().zip(&b).map(|(x, y)| max_abs_diff(x, y)).fold(0.0, f32::max);
        assert!(worst < 1e-5, "clip_x0={clip_x0}: trajectories differ by {worst}");
        // And the samples look like the data, N(0.3, 0.5^2) per pixel: over 96 pixels the
        // sample mean has a standard error of 0.05 and the sample std one of ~0.036, so
        // 4 standard errors bound both (all-zero or unscaled output fails).
        let final_a = values(&final_a);
        let n = final_a.len() as f32;
        let mean = final_a.iter().sum::<f32>() / n;
        let std = (final_a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1.0)).sqrt();
        assert!((mean - 0.3).abs() < 0.2, "clip_x0={clip_x0}: mean {mean}");
        assert!((std - 0.5).abs() < 0.15, "clip_x0={clip_x0}: std {std}");
    }
}

#[test]
fn ddim_eta_0_is_deterministic_given_x_t() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let start = Sampler::new(&schedule, SamplerConfig::ddim(25), 3, 1, [3, 4, 4], &device).unwrap();
    let x_t = start.x().clone();
    // Different seeds only change the per-step noise, which eta = 0 never adds.
    let final_for = |seed: u64, eta: f64| {
        let config = SamplerConfig { kind: SamplerKind::ddim(eta), ..SamplerConfig::ddim(25) };
        let sampler = Sampler::new(&schedule, config, seed, 1, [3, 4, 4], &device)
            .unwrap()
            .with_x(x_t.clone());
        values(&run_to_end(sampler, &AnalyticPredictor).1)
    };
    assert_eq!(final_for(1, 0.0), final_for(2, 0.0));
    assert_ne!(final_for(1, 1.0), final_for(2, 1.0), "eta = 1 adds seed-dependent noise");
}

#[test]
fn same_seed_gives_identical_images_and_another_seed_does_not() {
    let device = Device::flex();
    let model = perturbed_tiny_unet(1, &device);
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let config = SamplerConfig { kind: SamplerKind::ddim(1.0), steps: 12, clip_x0: true };
    let sample = |seed| {
        let sampler = Sampler::new(&schedule, config, seed, 2, [3, 16, 16], &device).unwrap();
        let x_t = values(sampler.x());
        (x_t, values(&run_to_end(sampler, &model).1))
    };
    let (x_t_a, final_a) = sample(40);
    let (x_t_b, final_b) = sample(40);
    assert_eq!(x_t_a, x_t_b);
    assert_eq!(final_a, final_b);
    let (x_t_c, final_c) = sample(41);
    assert_ne!(x_t_a, x_t_c);
    assert!(max_abs_diff(&final_a, &final_c) > 0.1);
}

#[test]
fn image_i_of_a_batch_is_image_0_of_seed_plus_i() {
    let device = Device::flex();
    let model = perturbed_tiny_unet(2, &device);
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let config = SamplerConfig { kind: SamplerKind::ddim(0.5), steps: 8, clip_x0: true };
    let run = |seed, batch| {
        values(
            &run_to_end(
                Sampler::new(&schedule, config, seed, batch, [3, 16, 16], &device).unwrap(),
                &model,
            )
            .1,
        )
    };
    let batch = run(70, 3);
    let single = run(72, 1);
    let per_image = 3 * 16 * 16;
    // Batched convolutions may sum in another order: equal up to f32 rounding.
    assert!(max_abs_diff(&batch[2 * per_image..], &single) < 1e-4);
}

#[test]
fn clipping_keeps_predicted_x0_and_the_final_image_in_range() {
    let device = Device::flex();
    let model = perturbed_tiny_unet(3, &device);
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let mut sampler =
        Sampler::new(&schedule, SamplerConfig::ddim(10), 5, 1, [3, 16, 16], &device).unwrap();
    // Leading spacing (the default) starts at 900 for 10 steps.
    assert_eq!((sampler.total_steps(), sampler.next_timestep()), (10, Some(900)));
    let mut unclipped_out_of_range = false;
    while let Some(step) = sampler.step(&model) {
        assert!(values(&step.predicted_x0).iter().all(|v| v.abs() <= 1.0));
        assert!(values(&step.added_noise).iter().all(|&v| v == 0.0), "eta 0 adds no noise");
        unclipped_out_of_range |= values(&step.x).iter().any(|v| v.abs() > 1.0);
    }
    assert!(unclipped_out_of_range, "intermediate x_t are noisy and exceed [-1, 1]");
    assert!(values(sampler.x()).iter().all(|v| v.abs() <= 1.0 + 1e-6));
    assert_eq!(sampler.completed_steps(), 10);
    assert!(sampler.step(&model).is_none());
}

#[test]
fn ddpm_adds_fresh_noise_except_at_the_last_step() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let mut sampler =
        Sampler::new(&schedule, SamplerConfig::ddpm(1000), 9, 1, [3, 4, 4], &device).unwrap();
    let mut last = None;
    while let Some(step) = sampler.step(&AnalyticPredictor) {
        let noise = values(&step.added_noise);
        if step.timestep > 0 {
            assert!(noise.iter().any(|&v| v != 0.0), "t={}", step.timestep);
        }
        last = Some((step.timestep, noise));
    }
    let (t, noise) = last.unwrap();
    assert_eq!(t, 0);
    assert!(noise.iter().all(|&v| v == 0.0));
}

#[test]
fn timesteps_are_evenly_spaced_and_descending() {
    use TimestepSpacing::{Leading, Trailing};
    assert_eq!(spaced_timesteps(1000, 4, Leading), vec![750, 500, 250, 0]);
    assert_eq!(spaced_timesteps(1000, 4, Trailing), vec![999, 749, 499, 249]);
    for spacing in [Leading, Trailing] {
        assert_eq!(spaced_timesteps(10, 10, spacing), (0..10).rev().collect::<Vec<_>>());
        assert_eq!(spaced_timesteps(1000, 1000, spacing), (0..1000).rev().collect::<Vec<_>>());
    }
    assert_eq!(spaced_timesteps(1000, 1, Trailing), vec![999]);
}

#[test]
fn invalid_sampler_settings_are_errors() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let image = [3, 4, 4];
    let ddpm_short = SamplerConfig { steps: 50, ..SamplerConfig::ddpm(1000) };
    assert_eq!(
        Sampler::new(&schedule, ddpm_short, 0, 1, image, &device).unwrap_err(),
        SamplerError::DdpmStepCount { steps: 50, timesteps: 1000 }
    );
    for steps in [0, 1001] {
        let err =
            Sampler::new(&schedule, SamplerConfig::ddim(steps), 0, 1, image, &device).unwrap_err();
        assert_eq!(err, SamplerError::DdimStepCount { steps, timesteps: 1000 });
    }
    let bad_eta = SamplerConfig { kind: SamplerKind::ddim(f64::NAN), ..SamplerConfig::ddim(10) };
    assert!(matches!(
        Sampler::new(&schedule, bad_eta, 0, 1, image, &device),
        Err(SamplerError::InvalidEta(_))
    ));
    assert_eq!(
        Sampler::new(&schedule, SamplerConfig::ddim(10), 0, 0, image, &device).unwrap_err(),
        SamplerError::InvalidBatch(0)
    );
}

#[test]
fn continuing_from_a_frame_of_a_run_with_its_seed_reproduces_the_rest_of_it() {
    let device = Device::flex();
    let model = perturbed_tiny_unet(3, &device);
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    for config in
        [SamplerConfig::ddim(10), SamplerConfig { clip_x0: false, ..SamplerConfig::ddim(10) }]
    {
        let config = SamplerConfig { kind: SamplerKind::ddim(1.0), ..config };
        let new = |seed| Sampler::new(&schedule, config, seed, 2, [3, 16, 16], &device).unwrap();
        let mut full = new(8);
        for _ in 0..4 {
            full.step(&model);
        }
        let branch_point = (full.next_timestep().unwrap(), full.x().clone());
        let (rest, final_full) = run_to_end(full, &model);
        let same = new(8).continue_from(branch_point.0, branch_point.1.clone()).unwrap();
        let (rest_again, final_again) = run_to_end(same, &model);
        assert_eq!(rest.len(), 6);
        assert_eq!(rest, rest_again, "same seed, same frame: the same ending");
        assert_eq!(values(&final_full), values(&final_again));
        let other = new(9).continue_from(branch_point.0, branch_point.1).unwrap();
        let final_other = values(&run_to_end(other, &model).1);
        assert_ne!(values(&final_full), final_other, "another seed adds other noise");
    }
}

#[test]
fn continuing_from_any_timestep_starts_there_then_follows_the_run_below_it() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let image = [3, 4, 4];
    let x = Tensor::zeros([1, 3, 4, 4], &device);
    let visited = |config, timestep| {
        let sampler = Sampler::new(&schedule, config, 0, 1, image, &device)
            .unwrap()
            .continue_from(timestep, x.clone())
            .unwrap();
        let mut sampler = sampler;
        let mut timesteps = Vec::new();
        while let Some(step) = sampler.step(&AnalyticPredictor) {
            timesteps.push(step.timestep);
        }
        timesteps
    };
    // Leading spacing (the default): 10 of 1000 steps visit 900, 800, .., 0.
    assert_eq!(visited(SamplerConfig::ddim(10), 555), vec![555, 500, 400, 300, 200, 100, 0]);
    // Trailing: 999, 899, .., 99.
    let trailing = SamplerKind::Ddim { eta: 0.0, spacing: TimestepSpacing::Trailing };
    let trailing = SamplerConfig { kind: trailing, ..SamplerConfig::ddim(10) };
    assert_eq!(visited(trailing, 555), vec![555, 499, 399, 299, 199, 99]);
    assert_eq!(visited(SamplerConfig::ddpm(1000), 3), vec![3, 2, 1, 0]);
    assert_eq!(visited(SamplerConfig::ddpm(1000), 0), vec![0]);
}

#[test]
fn continuing_from_a_bad_timestep_or_shape_is_an_error() {
    let device = Device::flex();
    let schedule = NoiseSchedule::new(ScheduleConfig::default());
    let new =
        || Sampler::new(&schedule, SamplerConfig::ddim(10), 0, 2, [3, 4, 4], &device).unwrap();
    let good = Tensor::zeros([2, 3, 4, 4], &device);
    let error = new().continue_from(1000, good).unwrap_err();
    assert_eq!(error, SamplerError::TimestepOutOfRange { timestep: 1000, last: 999 });
    assert!(error.to_string().contains("timestep 1000"), "{error}");
    let error = new().continue_from(10, Tensor::zeros([1, 3, 4, 4], &device)).unwrap_err();
    assert_eq!(error, SamplerError::ShapeMismatch { expected: [2, 3, 4, 4], found: [1, 3, 4, 4] });
}
