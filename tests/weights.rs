//! The weights file: round trips, the golden fingerprint, and every way a file is refused.

mod common;

use std::collections::HashMap;

use burn::tensor::Device;
use common::{parameters, perturbed_tiny_unet};
use ddpm_avatars::weights::{
    DatasetInfo, Fingerprint, METADATA_KEY, StorageDtype, TrainingInfo, WeightsError,
    WeightsMetadata, fingerprint_probe, load_from_bytes, load_from_file, read_metadata,
    save_to_bytes, save_to_file,
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
        TrainingInfo { steps: 12, images_seen: 12 * 64, ema_decay: 0.999, parent: None },
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

#[test]
fn golden_fingerprint_recorded_at_export_matches_after_loading() {
    let device = Device::flex();
    let (model, mut meta, _) = tiny_file(StorageDtype::F16);
    // The exporter rounds to f16 first, then fingerprints what the file will hold.
    let rounded = load(&save_to_bytes(&model, &meta, StorageDtype::F16).unwrap()).unwrap().model;
    meta.fingerprint = Some(Fingerprint::compute(&rounded, &meta, &device).unwrap());
    let bytes = save_to_bytes(&rounded, &meta, StorageDtype::F16).unwrap();

    let loaded = load(&bytes).unwrap();
    let recorded = loaded.metadata.fingerprint.clone().unwrap();
    assert_eq!(recorded.values.len(), 16);
    assert!(recorded.values.iter().any(|v| v.abs() > 1e-3), "fingerprint is not all zeros");
    let fresh: Vec<f32> =
        fingerprint_probe(&loaded.model, &loaded.metadata, &device).try_into_vec_as().unwrap();
    assert!(recorded.check(&fresh, 1e-5).is_ok());
    // Another model does not pass.
    let other = perturbed_tiny_unet(6, &device);
    let other_values: Vec<f32> =
        fingerprint_probe(&other, &loaded.metadata, &device).try_into_vec_as().unwrap();
    assert!(recorded.check(&other_values, 1e-3).is_err());
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
    let broken = assemble(&entries(&bytes), Some("{\"format_version\": 1, \"model\": 3}".into()));
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
