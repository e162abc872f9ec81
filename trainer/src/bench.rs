//! `bench`: training throughput and sampling latency of the default U-Net on one device,
//! printed as a table. This is where speed is measured (never in tests).

use std::time::Instant;

use anyhow::Result;
use burn::tensor::Device;
use ddpm_avatars::noise::{NoiseStream, standard_normal};
use ddpm_avatars::weights::DatasetInfo;
use ddpm_avatars::{NoiseSchedule, Sampler, SamplerConfig, ScheduleConfig, UNetConfig};

use crate::data::ImageDataset;
use crate::train::{RunConfig, StepContext, optimizer, train_step};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The model (the default config unless asked otherwise).
    pub model: UNetConfig,
    /// Training batch size.
    pub train_batch: usize,
    /// Timed training steps (after warm-up).
    pub train_steps: usize,
    /// Sampling batch sizes.
    pub sample_batches: Vec<usize>,
    /// Timed sampling steps per batch size (after warm-up).
    pub sample_steps: usize,
    /// Untimed steps first (autotune, shader compilation, allocation).
    pub warmup_steps: usize,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// What was measured.
    pub what: String,
    /// The figure.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
}

/// Runs the benchmark on `device` and returns the rows.
pub fn run(options: &BenchOptions, device: &Device) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    let size = options.model.image_size;
    let pixels = (standard_normal(1, NoiseStream::Aux(9), 64 * 3 * size * size))
        .iter()
        .map(|v| ((v * 60.0) + 128.0).clamp(0.0, 255.0) as u8)
        .collect();
    let dataset = ImageDataset::from_packed(size, pixels)?;
    let config = RunConfig {
        model: options.model.clone(),
        schedule: ScheduleConfig::default(),
        data: "synthetic".into(),
        dataset: DatasetInfo { name: "synthetic".into(), licence: "none".into() },
        batch_size: options.train_batch,
        learning_rate: 2e-4,
        warmup_steps: 100,
        grad_clip: 1.0,
        ema_decay: 0.9999,
        seed: 0,
        checkpoint_every: u64::MAX,
        log_every: u64::MAX,
        parent: None,
        parent_steps: 0,
        parent_images: 0,
    };
    let train_device = device.clone().autodiff();
    let schedule = NoiseSchedule::new(config.schedule);
    let mut model = config.model.init(&train_device);
    let mut optim = optimizer();
    let mut timed = None;
    for step in 0..(options.warmup_steps + options.train_steps) as u64 {
        if step == options.warmup_steps as u64 {
            timed = Some(Instant::now());
        }
        // train_step reads the loss back every step, so each step is fully synchronised.
        let context = StepContext {
            config: &config,
            schedule: &schedule,
            dataset: &dataset,
            device: &train_device,
        };
        model = train_step(model, &mut optim, context, step)?.0;
    }
    if let Some(started) = timed {
        let images = (options.train_steps * options.train_batch) as f64;
        rows.push(BenchRow {
            what: format!("training, batch {}", options.train_batch),
            value: images / started.elapsed().as_secs_f64(),
            unit: "img/s",
        });
    }

    let model = options.model.init(device);
    let image = [options.model.image_channels, size, size];
    for &batch in &options.sample_batches {
        let total = options.warmup_steps + options.sample_steps;
        let config = SamplerConfig::ddim(total.min(schedule.timesteps()));
        let mut sampler = Sampler::new(&schedule, config, 0, batch, image, device)?;
        let mut started = Instant::now();
        for step in 0..total {
            if step == options.warmup_steps {
                device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
                started = Instant::now();
            }
            sampler.step(&model);
        }
        device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        rows.push(BenchRow {
            what: format!("sampling, batch {batch}"),
            value: started.elapsed().as_secs_f64() * 1000.0 / options.sample_steps.max(1) as f64,
            unit: "ms/step",
        });
    }
    Ok(rows)
}

/// The rows as a small text table.
pub fn table(device_name: &str, rows: &[BenchRow]) -> String {
    let mut text = format!("device: {device_name}\n{:<28} {:>12}  unit\n", "measurement", "value");
    for row in rows {
        text.push_str(&format!("{:<28} {:>12.2}  {}\n", row.what, row.value, row.unit));
    }
    text
}
