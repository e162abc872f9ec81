//! The forward process against its closed forms (Ho et al. 2020, eqs. 4 and 7; the seeds).

use burn::tensor::{Device, Tensor, TensorData};
use ddpm_avatars::noise::{NoiseStream, standard_normal};
use ddpm_avatars::{BetaSchedule, NoiseSchedule, ScheduleConfig};

fn linear() -> NoiseSchedule {
    NoiseSchedule::new(ScheduleConfig::default())
}

#[test]
fn alpha_bar_is_the_product_of_alphas() {
    let schedule = linear();
    assert_eq!(schedule.timesteps(), 1000);
    for t in [0, 1, 10, 500, 999] {
        // Independent route: exp(sum ln alpha_s).
        let via_logs: f64 = schedule.alphas[..=t].iter().map(|a| a.ln()).sum::<f64>().exp();
        assert!((schedule.alpha_bars[t] - via_logs).abs() < 1e-12, "t={t}");
    }
    assert!((schedule.betas[0] - 1e-4).abs() < 1e-15 && (schedule.betas[999] - 0.02).abs() < 1e-15);
    // Well-known value of the paper's schedule: alpha_bar_T ~ 4.04e-5 (sqrt ~ 0.00635).
    assert!((schedule.alpha_bars[999] - 4.036e-5).abs() < 0.01e-5, "{}", schedule.alpha_bars[999]);
    assert_eq!(schedule.alpha_bars_prev[0], 1.0);
    assert_eq!(schedule.alpha_bars_prev[500], schedule.alpha_bars[499]);
}

#[test]
fn q_sample_of_a_constant_image_has_the_closed_form_mean_and_variance() {
    let schedule = linear();
    let device = Device::flex();
    let draws = 20_000;
    let x0_value = 0.6_f64;
    for t in [50, 300, 900] {
        let x0 = Tensor::<4>::full([draws, 1, 1, 1], x0_value as f32, &device);
        let eps = standard_normal(t as u64, NoiseStream::Aux(7), draws);
        let eps = Tensor::<4>::from_data(TensorData::new(eps, [draws, 1, 1, 1]), &device);
        let x_t: Vec<f32> =
            schedule.q_sample(x0, &vec![t; draws], eps).into_data().try_into_vec().unwrap();
        let n = draws as f64;
        let mean = x_t.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let variance = x_t.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / (n - 1.0);

        let expected_mean = schedule.alpha_bars[t].sqrt() * x0_value;
        let expected_variance = 1.0 - schedule.alpha_bars[t];
        // Five standard errors: sd/sqrt(n) for the mean, var*sqrt(2/(n-1)) for the variance.
        let mean_tolerance = 5.0 * (expected_variance / n).sqrt();
        let variance_tolerance = 5.0 * expected_variance * (2.0 / (n - 1.0)).sqrt();
        assert!(
            (mean - expected_mean).abs() < mean_tolerance,
            "t={t}: mean {mean} vs {expected_mean}"
        );
        assert!(
            (variance - expected_variance).abs() < variance_tolerance,
            "t={t}: variance {variance} vs {expected_variance}"
        );
    }
}

#[test]
fn posterior_matches_the_seed_formulas() {
    let schedule = linear();
    for t in [1, 2, 17, 250, 640, 999] {
        let (alpha, alpha_bar, alpha_bar_prev) =
            (schedule.alphas[t], schedule.alpha_bars[t], schedule.alpha_bars[t - 1]);
        // Seed: sigma_t = sqrt((1 - alpha_t)(1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)).
        let sigma = ((1.0 - alpha) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)).sqrt();
        assert!((schedule.posterior_variance[t] - sigma * sigma).abs() < 1e-15, "t={t}");

        // Seed: mean = 1/sqrt(alpha_t) (x_t - (1 - alpha_t)/sqrt(1 - alpha_bar_t) eps) must equal
        // the posterior mean coef_x0 x_0 + coef_xt x_t for x_0 and x_t linked by eq. 4.
        for (x0, eps) in [(0.3, -1.2), (-0.9, 0.4), (1.0, 2.5)] {
            let x_t = alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * eps;
            let seed_mean = (x_t - (1.0 - alpha) / (1.0 - alpha_bar).sqrt() * eps) / alpha.sqrt();
            let posterior_mean =
                schedule.posterior_mean_coef_x0[t] * x0 + schedule.posterior_mean_coef_xt[t] * x_t;
            assert!(
                (seed_mean - posterior_mean).abs() < 1e-9,
                "t={t}: {seed_mean} vs {posterior_mean}"
            );
        }
    }
    // beta_tilde at the first step is 0: the last reverse step adds no noise.
    assert_eq!(schedule.posterior_variance[0], 0.0);
}

#[test]
fn cosine_schedule_endpoints() {
    let schedule =
        NoiseSchedule::new(ScheduleConfig { beta: BetaSchedule::cosine(), timesteps: 1000 });
    // f(1)/f(0) with s = 0.008: the first step removes almost nothing ...
    assert!(schedule.betas[0] > 0.0 && schedule.betas[0] < 1e-4, "{}", schedule.betas[0]);
    assert!(schedule.alpha_bars[0] > 0.9999);
    // ... and the last is clipped at max_beta, where f(T) = cos^2(pi/2) = 0.
    assert_eq!(schedule.betas[999], 0.999);
    assert!(schedule.alpha_bars[999] < 1e-6);
    // Halfway, the cosine schedule keeps more signal than the linear one (its point).
    assert!(schedule.alpha_bars[500] > linear().alpha_bars[500]);
    assert!(schedule.alpha_bars.windows(2).all(|w| w[1] < w[0]));
}

#[test]
fn invalid_schedules_are_rejected() {
    let zero_steps = ScheduleConfig { beta: BetaSchedule::linear(), timesteps: 0 };
    assert!(zero_steps.validate().unwrap_err().contains("timesteps"));
    let bad_beta = ScheduleConfig {
        beta: BetaSchedule::Linear { beta_start: 0.0, beta_end: 1.5 },
        timesteps: 10,
    };
    assert!(bad_beta.validate().is_err());
    assert!(ScheduleConfig::default().validate().is_ok());
}
