//! Writes a weights file for the browser tests and benchmarks: the tiny U-Net (16x16), or with
//! `--default` the default one (64x64, 8.95 M parameters), with seeded random weights, a
//! fingerprint, and the real metadata, through the same code the trainer's `export` uses.
//! `cargo run --example tiny_weights -- OUT.safetensors [SEED] [--default]`

use burn::tensor::Device;
use ddpm_avatars::model::perturbed;
use ddpm_avatars::weights::{
    DatasetInfo, StorageDtype, TrainingInfo, WeightsMetadata, export_to_file,
};
use ddpm_avatars::{ScheduleConfig, UNetConfig};

fn main() {
    let (flags, args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let config = match flags.as_slice() {
        [] => UNetConfig::tiny(),
        [flag] if flag == "--default" => UNetConfig::new(),
        _ => usage(),
    };
    let (out, seed) = match args.as_slice() {
        [out] => (out.clone(), 7),
        [out, seed] => (out.clone(), seed.parse().unwrap_or_else(|_| usage())),
        _ => usage(),
    };
    if let Err(error) = write(std::path::Path::new(&out), seed, config) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
    println!("wrote {out}");
}

fn usage() -> ! {
    eprintln!("usage: tiny_weights OUT.safetensors [SEED] [--default]");
    std::process::exit(2);
}

fn write(
    out: &std::path::Path,
    seed: u64,
    config: UNetConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let model = perturbed(config.init(&device), seed, 0.05);
    let dataset =
        DatasetInfo { name: "none (random weights for tests)".into(), licence: "CC0 1.0".into() };
    let training = TrainingInfo::default();
    let metadata = WeightsMetadata::new(config, ScheduleConfig::default(), dataset, training);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    export_to_file(out, &model, metadata, StorageDtype::F16, &device)?;
    Ok(())
}
