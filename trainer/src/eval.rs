//! `eval`: the model's eps-MSE on the held-out images at fixed `(t, eps)`, comparable
//! between runs and checkpoints (same data folder, same numbers drawn).

use burn::tensor::{Device, Tensor, TensorData};
use ddpm_avatars::noise::{NoiseStream, batch_standard_normal};
use ddpm_avatars::{NoiseSchedule, ScheduleConfig, UNet};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Seed of the evaluation's timesteps and noise; fixed forever so results stay comparable.
pub const EVAL_SEED: u64 = 0xE7A1;

/// The result of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean squared error between the true and predicted noise, over all pixels.
    pub eps_mse: f64,
    /// Held-out images evaluated.
    pub images: usize,
}

/// Evaluates `model` on `images` (planar values in `[-1, 1]`, `size` x `size` RGB), in
/// batches of `batch`. Image `i` gets timestep and noise drawn from `(EVAL_SEED, i)` only.
pub fn eps_mse(
    model: &UNet,
    schedule: ScheduleConfig,
    images: &[f32],
    size: usize,
    batch: usize,
    device: &Device,
) -> Evaluation {
    let schedule = NoiseSchedule::new(schedule);
    let per_image = 3 * size * size;
    let count = images.len() / per_image;
    let model = model.clone();
    let mut total = 0.0;
    for start in (0..count).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(count);
        let n = end - start;
        let x0 = Tensor::<4>::from_data(
            TensorData::new(
                images[start * per_image..end * per_image].to_vec(),
                [n, 3, size, size],
            ),
            device,
        );
        let timesteps: Vec<usize> = (start..end)
            .map(|i| {
                (ChaCha8Rng::seed_from_u64(EVAL_SEED ^ (i as u64) << 20).next_u64()
                    % schedule.timesteps() as u64) as usize
            })
            .collect();
        let noise: Vec<f32> = (start..end)
            .flat_map(|i| {
                batch_standard_normal(
                    EVAL_SEED.wrapping_add(i as u64),
                    1,
                    NoiseStream::Aux(1),
                    per_image,
                )
            })
            .collect();
        let noise = Tensor::<4>::from_data(TensorData::new(noise, [n, 3, size, size]), device);
        let x_t = schedule.q_sample(x0, &timesteps, noise.clone());
        let t = Tensor::<1>::from_data(
            TensorData::new(timesteps.iter().map(|&t| t as f32).collect::<Vec<_>>(), [n]),
            device,
        );
        let squared_error: f32 = (model.forward(x_t, t) - noise).square().sum().into_scalar();
        total += f64::from(squared_error);
    }
    Evaluation { eps_mse: total / (count * per_image).max(1) as f64, images: count }
}
