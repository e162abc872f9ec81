//! Training really learns: a tiny U-Net on 64 generated images lowers L_simple at least 5x,
//! and the EMA weights are a different model from the raw ones.

use burn::module::Module;
use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::Device;
use ddpm_avatars::weights::DatasetInfo;
use ddpm_avatars::{NoiseSchedule, ScheduleConfig, UNet, UNetConfig};
use trainer::data::ImageDataset;
use trainer::ema::Ema;
use trainer::train::{RunConfig, optimizer, train_step};

/// 64 images of 16x16: a coloured disc of varying position, size and colour on a flat
/// background, so there is structure to learn.
pub fn generated_images(count: usize, size: usize) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(count * 3 * size * size);
    for i in 0..count {
        let (cx, cy) = ((3 + i * 5 % 10) as f32, (3 + i * 7 % 10) as f32);
        let radius = 3.0 + (i % 4) as f32;
        let disc = [(i * 40 % 256) as u8, (255 - i * 20 % 256) as u8, (i * 90 % 256) as u8];
        let background = [230u8, 220, (i * 13 % 100) as u8 + 120];
        for channel in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let inside =
                        (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < radius * radius;
                    pixels.push(if inside { disc[channel] } else { background[channel] });
                }
            }
        }
    }
    pixels
}

fn all_values(model: &UNet) -> Vec<f32> {
    model
        .collect(None, None, false)
        .iter()
        .flat_map(|t| bridge::to_data(t).unwrap().try_into_vec_as::<f32>().unwrap())
        .collect()
}

#[test]
fn tiny_model_lowers_the_loss_5x_and_ema_differs_from_raw_weights() {
    let device = Device::flex().autodiff();
    let dataset = ImageDataset::from_packed(16, generated_images(64, 16)).unwrap();
    let config = RunConfig {
        model: UNetConfig::tiny().with_dropout(0.0),
        schedule: ScheduleConfig::default(),
        data: "generated".into(),
        dataset: DatasetInfo { name: "discs".into(), licence: "CC0".into() },
        batch_size: 16,
        learning_rate: 2e-3,
        warmup_steps: 10,
        grad_clip: 1.0,
        ema_decay: 0.99,
        seed: 1,
        checkpoint_every: 1000,
        log_every: 1000,
        parent: None,
        parent_steps: 0,
        parent_images: 0,
    };
    let schedule = NoiseSchedule::new(config.schedule);
    let mut model = config.model.init(&device);
    let mut ema = Ema::new(&model, config.ema_decay);
    let mut optim = optimizer();
    let mut losses = Vec::new();
    for step in 0..200 {
        let (updated, loss) =
            train_step(model, &mut optim, &schedule, &config, &dataset, step, &device).unwrap();
        model = updated;
        ema.update(&model, step);
        losses.push(loss);
    }
    let first = losses[0];
    let last: f32 = losses[180..].iter().sum::<f32>() / 20.0;
    println!("loss: first {first:.4}, mean of last 20 steps {last:.4}");
    assert!(
        first > 0.5,
        "the zero-initialised output predicts 0, so the first loss is ~E[eps^2] = 1: {first}"
    );
    assert!(last * 5.0 <= first, "loss fell only from {first} to {last}");

    let raw = all_values(&model.valid());
    let averaged = all_values(&ema.model);
    let difference = raw.iter().zip(&averaged).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(difference > 1e-4, "EMA equals the raw weights (max difference {difference})");
    assert!(averaged.iter().all(|v| v.is_finite()));
}
