//! Writes a small weights file for the browser tests: the tiny U-Net (16x16) with seeded
//! random weights, a fingerprint, and the real metadata, through the same code the trainer's
//! `export` uses. `cargo run --example tiny_weights -- OUT.safetensors [SEED]`

use burn::tensor::Device;
use ddpm_avatars::model::perturbed;
use ddpm_avatars::weights::{
    DatasetInfo, StorageDtype, TrainingInfo, WeightsMetadata, export_to_file,
};
use ddpm_avatars::{ScheduleConfig, UNetConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: tiny_weights OUT.safetensors [SEED]");
        std::process::exit(2);
    };
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(7);
    if let Err(error) = write(std::path::Path::new(&out), seed) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
    println!("wrote {out}");
}

fn write(out: &std::path::Path, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let config = UNetConfig::tiny();
    let model = perturbed(config.init(&device), seed, 0.05);
    let dataset =
        DatasetInfo { name: "none (random weights for tests)".into(), licence: "CC0 1.0".into() };
    let training = TrainingInfo { steps: 0, images_seen: 0, ema_decay: 0.0, parent: None };
    let metadata = WeightsMetadata::new(config, ScheduleConfig::default(), dataset, training);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    export_to_file(out, &model, metadata, StorageDtype::F16, &device)?;
    Ok(())
}
