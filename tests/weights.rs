//! The weights file: round trips, the golden fingerprint, and every way a file is refused.

mod common;

use std::collections::HashMap;

use burn::tensor::Device;
use common::{parameters, perturbed_tiny_unet};
use ddpm_avatars::model::perturbed;
use ddpm_avatars::weights::{
    DatasetInfo, FINGERPRINT_TOLERANCE, FORMAT_VERSION, Fingerprint, FingerprintMismatch,
    METADATA_KEY, StorageDtype, TrainingInfo, WeightsError, WeightsMetadata, fingerprint_probe,
    load_from_bytes, load_from_file, read_metadata, save_to_bytes, save_to_file,
};
use ddpm_avatars::{ScheduleConfig, UNet, UNetConfig};
use safetensors::{Dtype, SafeTensors};

fn metadata(model: UNetConfig) -> WeightsMetadata {
    WeightsMetadata::new(
        model,
        ScheduleConfig::default(),
        DatasetInfo {
            name: "test-noise".into(),
            licence: "CC0 1.0 (generated in the test)".into(),
        },
        TrainingInfo { steps: 12, images_seen: 12 * 64, ema_decay: 0.999, ..Default::default() },
    )
}

fn tiny_file(dtype: StorageDtype) -> (UNet, WeightsMetadata, Vec<u8>) {
    let device = Device::flex();
    let model = perturbed_tiny_unet(5, &device);
    let meta = metadata(UNetConfig::tiny());
    let bytes = save_to_bytes(&model, &meta, dtype).unwrap();
    (model, meta, bytes)
}

/// One tensor of a hand-made file.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for &Entry {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A good file taken apart, so a test can break one thing and put it back together.
fn entries(bytes: &[u8]) -> Vec<Entry> {
    SafeTensors::deserialize(bytes)
        .unwrap()
        .tensors()
        .into_iter()
        .map(|(name, view)| Entry {
            name,
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            bytes: view.data().to_vec(),
        })
        .collect()
}

fn assemble(entries: &[Entry], metadata: Option<String>) -> Vec<u8> {
    let metadata = metadata.map(|json| HashMap::from([(METADATA_KEY.to_string(), json)]));
    safetensors::serialize(entries.iter().map(|e| (e.name.clone(), e)), metadata).unwrap()
}

fn load(bytes: &[u8]) -> Result<ddpm_avatars::weights::LoadedWeights, WeightsError> {
    load_from_bytes(bytes, &Device::flex())
}

#[test]
fn f32_round_trip_is_exact() {
    let (model, meta, bytes) = tiny_file(StorageDtype::F32);
    let loaded = load(&bytes).unwrap();
    assert_eq!(loaded.metadata, meta);
    assert_eq!(parameters(&loaded.model), parameters(&model));
    assert_eq!(loaded.short_hash.len(), 12);
}

#[test]
fn f16_round_trip_is_within_f16_rounding_and_half_the_size() {
    let (model, _, bytes) = tiny_file(StorageDtype::F16);
    let (_, _, bytes_f32) = tiny_file(StorageDtype::F32);
    assert!(bytes.len() * 10 < bytes_f32.len() * 6, "{} vs {}", bytes.len(), bytes_f32.len());
    let loaded = load(&bytes).unwrap();
    for ((name, shape, original), (loaded_name, loaded_shape, restored)) in
        parameters(&model).iter().zip(parameters(&loaded.model).iter())
    {
        assert_eq!((name, shape), (loaded_name, loaded_shape));
        for (a, b) in original.iter().zip(restored) {
            // f16 has an 11-bit significand: relative error <= 2^-11, plus subnormal spacing.
            assert!((a - b).abs() <= a.abs() * 4.9e-4 + 6e-8, "{name}: {a} -> {b}");
        }
    }
}

#[test]
fn file_round_trip_is_atomic_and_loads_from_a_path() {
    let dir = std::env::temp_dir().join(format!("ddpm-weights-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.safetensors");
    let (model, meta, _) = tiny_file(StorageDtype::F16);
    save_to_file(&path, &model, &meta, StorageDtype::F16).unwrap();
    assert!(!dir.join("tiny.safetensors.partial").exists());
    assert_eq!(load_from_file(&path, &Device::flex()).unwrap().metadata, meta);
    let missing = load_from_file(&dir.join("absent.safetensors"), &Device::flex()).unwrap_err();
    assert!(
        matches!(missing, WeightsError::Io { .. })
            && missing.to_string().contains("absent.safetensors")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The tiny model as the exporter publishes it: rounded to f16, fingerprinted, saved.
fn exported_tiny() -> (UNet, WeightsMetadata, Vec<u8>) {
    let device = Device::flex();
    let (model, mut meta, _) = tiny_file(StorageDtype::F16);
    let rounded = load(&save_to_bytes(&model, &meta, StorageDtype::F16).unwrap()).unwrap().model;
    meta.fingerprint = Some(Fingerprint::compute(&rounded, &meta, &device).unwrap());
    let bytes = save_to_bytes(&rounded, &meta, StorageDtype::F16).unwrap();
    (rounded, meta, bytes)
}

fn probe(model: &UNet, meta: &WeightsMetadata) -> Vec<f32> {
    fingerprint_probe(model, meta, &Device::flex()).try_into_vec_as().unwrap()
}

#[test]
fn golden_fingerprint_recorded_at_export_matches_after_loading() {
    let (_, _, bytes) = exported_tiny();
    let loaded = load(&bytes).unwrap();
    let recorded = loaded.metadata.fingerprint.clone().unwrap();
    assert_eq!(recorded.values.len(), 32);
    assert_eq!(recorded.timesteps, vec![500, 100]);
    assert!(recorded.values.iter().any(|v| v.abs() > 0.05), "fingerprint is not all zeros");
    let largest = recorded.check(&probe(&loaded.model, &loaded.metadata)).unwrap();
    println!("fingerprint: same weights, same backend: largest difference {largest}");
    assert!(largest <= 1e-6, "the same computation differs by {largest}");
}

#[test]
fn weights_that_differ_slightly_from_the_exported_ones_fail_the_fingerprint() {
    let (rounded, meta, _) = exported_tiny();
    let recorded = meta.fingerprint.clone().unwrap();
    // Noise of std 0.002 on every parameter (the tiny model's weights are ~0.05-0.3).
    let nudged = perturbed(rounded.clone(), 77, 0.002);
    let error = recorded.check(&probe(&nudged, &meta)).unwrap_err();
    println!("fingerprint: weights nudged by 0.002: {error}");
    assert!(
        matches!(error, FingerprintMismatch::Differs { largest } if largest > FINGERPRINT_TOLERANCE)
    );
    // Twenty times smaller still: below the f16 spacing of most weights, and still caught.
    let barely = perturbed(rounded.clone(), 78, 0.0001);
    let error = recorded.check(&probe(&barely, &meta)).unwrap_err();
    println!("fingerprint: weights nudged by 0.0001: {error}");
    // Another model entirely.
    let other = perturbed_tiny_unet(6, &Device::flex());
    assert!(recorded.check(&probe(&other, &meta)).is_err());
}

#[test]
fn a_fingerprint_with_nan_or_the_wrong_length_never_passes() {
    let (_, meta, _) = exported_tiny();
    let recorded = meta.fingerprint.unwrap();
    let mut values = recorded.values.clone();
    assert_eq!(recorded.check(&values), Ok(0.0));
    values[3] = f32::NAN;
    assert_eq!(recorded.check(&values), Err(FingerprintMismatch::NonFinite));
    let all_nan = vec![f32::NAN; values.len()];
    assert_eq!(recorded.check(&all_nan), Err(FingerprintMismatch::NonFinite));
    assert!(matches!(recorded.check(&values[..4]), Err(FingerprintMismatch::Length { .. })));
}

#[test]
fn a_config_of_tens_of_gigabytes_in_a_small_file_is_refused_before_anything_is_built() {
    // The review's example: base 512 x multiplier 8 x 8 levels x 8 blocks, attention at 1024.
    let huge = UNetConfig::new()
        .with_image_size(1024)
        .with_base_channels(512)
        .with_channel_multipliers(vec![8; 8])
        .with_res_blocks_per_level(8)
        .with_attention_resolutions(vec![1024]);
    let (_, _, bytes) = tiny_file(StorageDtype::F16);
    // One small tensor (the tiny model's output bias) and the huge config's metadata.
    let bias: Vec<Entry> =
        entries(&bytes).into_iter().filter(|e| e.name == "conv_out.bias").collect();
    let file = assemble(&bias, Some(serde_json::to_string(&metadata(huge)).unwrap()));
    assert!(file.len() < 8 * 1024, "{} bytes", file.len());
    let err = load(&file).unwrap_err();
    assert!(matches!(err, WeightsError::InvalidConfig(_)), "{err}");
    // Each cap names itself.
    let sized = |c: UNetConfig| c.validate().unwrap_err();
    assert!(sized(UNetConfig::new().with_image_size(1024)).contains("image_size"));
    assert!(sized(UNetConfig::new().with_attention_resolutions(vec![64])).contains("attention"));
    let wide = UNetConfig::new().with_base_channels(512).with_channel_multipliers(vec![1, 2, 4, 8]);
    assert!(sized(wide).contains("parameters"));
    assert!(sized(UNetConfig::new().with_image_channels(4)).contains("image_channels must be 3"));
}

#[test]
fn random_truncations_and_bit_flips_never_panic_and_lost_bytes_are_refused() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    let (_, _, bytes) = exported_tiny();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut outcomes = HashMap::<String, usize>::new();
    for trial in 0..300 {
        let mut damaged = bytes.clone();
        let truncated = trial % 2 == 0;
        let what = if truncated {
            let keep = rng.next_u64() as usize % damaged.len();
            damaged.truncate(keep);
            format!("truncated to {keep} bytes")
        } else {
            // Half the flips hit the header (JSON, names, shapes), half the tensor data. A
            // flip can leave a valid file (a licence letter, a weight's low bit): allowed.
            let position = if trial % 4 == 1 {
                rng.next_u64() as usize % header_end
            } else {
                header_end + rng.next_u64() as usize % (damaged.len() - header_end)
            };
            damaged[position] ^= 1 << (rng.next_u32() % 8);
            format!("with a bit flipped at byte {position}")
        };
        let result = std::panic::catch_unwind(|| load(&damaged).map(|_| ()))
            .unwrap_or_else(|_| panic!("loading a file {what} panicked"));
        assert!(!truncated || result.is_err(), "a file {what} loaded");
        let outcome = match &result {
            Ok(()) => "loaded".to_string(),
            Err(e) => format!("{e:?}").split(['(', ' ', '{']).next().unwrap_or("").to_string(),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    println!("outcomes of 300 damaged files: {outcomes:?}");
    assert!(outcomes.len() >= 3, "the damage should reach several checks: {outcomes:?}");
}

#[test]
fn a_one_byte_file_is_truncated() {
    assert!(matches!(load(&[0x7b]), Err(WeightsError::Truncated(_))));
    assert!(matches!(load(&[]), Err(WeightsError::Truncated(_))));
}

#[test]
fn a_header_claiming_2_pow_40_bytes_is_refused_without_allocating() {
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert!(matches!(load(&bytes), Err(WeightsError::HeaderTooLarge(_))));
}

#[test]
fn text_is_not_safetensors() {
    let mut bytes = 10u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"<html>404!");
    let err = load(&bytes).unwrap_err();
    assert!(matches!(err, WeightsError::NotSafetensors(_)), "{err}");
}

#[test]
fn a_truncated_file_is_detected() {
    let (_, _, bytes) = tiny_file(StorageDtype::F16);
    for cut in [1, 1000, bytes.len() - 20] {
        let err = load(&bytes[..bytes.len() - cut]).unwrap_err();
        assert!(matches!(err, WeightsError::Truncated(_)), "cut {cut}: {err}");
    }
}

#[test]
fn an_unknown_format_version_is_refused() {
    let (_, mut meta, bytes) = tiny_file(StorageDtype::F16);
    meta.format_version = 99;
    let file = assemble(&entries(&bytes), Some(serde_json::to_string(&meta).unwrap()));
    assert!(matches!(load(&file), Err(WeightsError::UnknownFormatVersion { found: 99 })));
}

#[test]
fn missing_or_broken_metadata_is_refused() {
    let (_, _, bytes) = tiny_file(StorageDtype::F16);
    assert!(matches!(load(&assemble(&entries(&bytes), None)), Err(WeightsError::MissingMetadata)));
    let broken = format!("{{\"format_version\": {FORMAT_VERSION}, \"model\": 3}}");
    let broken = assemble(&entries(&bytes), Some(broken));
    assert!(matches!(load(&broken), Err(WeightsError::InvalidMetadata(_))));
}

#[test]
fn a_missing_tensor_is_named() {
    let (_, meta, bytes) = tiny_file(StorageDtype::F16);
    let mut parts = entries(&bytes);
    let position = parts.iter().position(|e| e.name == "conv_out.weight").unwrap();
    parts.remove(position);
    let err = load(&assemble(&parts, Some(serde_json::to_string(&meta).unwrap()))).unwrap_err();
    assert!(
        matches!(&err, WeightsError::MissingTensor(name) if name == "conv_out.weight"),
        "{err}"
    );
}

#[test]
fn an_unexpected_tensor_is_named() {
    let (_, meta, bytes) = tiny_file(StorageDtype::F16);
    let mut parts = entries(&bytes);
    parts.push(Entry {
        name: "extra.weight".into(),
        dtype: Dtype::F16,
        shape: vec![2],
        bytes: vec![0; 4],
    });
    let err = load(&assemble(&parts, Some(serde_json::to_string(&meta).unwrap()))).unwrap_err();
    assert!(
        matches!(&err, WeightsError::UnexpectedTensor(name) if name == "extra.weight"),
        "{err}"
    );
}

#[test]
fn a_wrong_shape_is_named() {
    let (_, meta, bytes) = tiny_file(StorageDtype::F16);
    let mut parts = entries(&bytes);
    let bias = parts.iter_mut().find(|e| e.name == "conv_out.bias").unwrap();
    bias.shape = vec![1, 3];
    let err = load(&assemble(&parts, Some(serde_json::to_string(&meta).unwrap()))).unwrap_err();
    assert!(
        matches!(&err, WeightsError::WrongShape { name, expected, found } if name == "conv_out.bias" && expected == &[3] && found == &[1, 3]),
        "{err}"
    );
}

#[test]
fn a_wrong_dtype_is_named() {
    let (_, meta, bytes) = tiny_file(StorageDtype::F16);
    let mut parts = entries(&bytes);
    let bias = parts.iter_mut().find(|e| e.name == "conv_out.bias").unwrap();
    bias.dtype = Dtype::BF16;
    let err = load(&assemble(&parts, Some(serde_json::to_string(&meta).unwrap()))).unwrap_err();
    assert!(
        matches!(&err, WeightsError::WrongDtype { name, .. } if name == "conv_out.bias"),
        "{err}"
    );
}

#[test]
fn non_finite_values_are_named() {
    let (_, meta, bytes) = tiny_file(StorageDtype::F32);
    let mut parts = entries(&bytes);
    let weight = parts.iter_mut().find(|e| e.name == "conv_in.weight").unwrap();
    weight.bytes[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = load(&assemble(&parts, Some(serde_json::to_string(&meta).unwrap()))).unwrap_err();
    assert!(matches!(&err, WeightsError::NonFinite(name) if name == "conv_in.weight"), "{err}");
}

#[test]
fn metadata_describing_another_model_is_a_config_mismatch() {
    let (_, _, bytes) = tiny_file(StorageDtype::F16);
    let wider = metadata(UNetConfig::tiny().with_base_channels(32));
    let err = load(&assemble(&entries(&bytes), Some(serde_json::to_string(&wider).unwrap())))
        .unwrap_err();
    assert!(
        matches!(&err, WeightsError::ConfigMismatch { mismatched, .. } if *mismatched > 10),
        "{err}"
    );
    assert!(err.to_string().contains("UNetConfig does not match"));
}

#[test]
fn an_impossible_config_is_refused_before_building_a_model() {
    let (_, _, bytes) = tiny_file(StorageDtype::F16);
    let impossible = metadata(UNetConfig::tiny().with_norm_groups(5));
    let file = assemble(&entries(&bytes), Some(serde_json::to_string(&impossible).unwrap()));
    assert!(matches!(read_metadata(&file), Err(WeightsError::InvalidConfig(_))));
    assert!(matches!(load(&file), Err(WeightsError::InvalidConfig(_))));
}
