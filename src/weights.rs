//! The published weights file: one `.safetensors` file that describes itself.
//!
//! Tensors are named by module path (`down_blocks.0.layers.1.res.conv_1.weight`) and stored in
//! f16 (default) or f32. The `__metadata__` map holds one key, [`METADATA_KEY`], whose value is
//! the JSON of [`WeightsMetadata`]: format version, model and schedule configuration, image
//! size and range, dataset and licence, training progress, and a [`Fingerprint`] of the first
//! sampling steps so a loader can check that it computes what the trainer computed.
//!
//! Loading validates everything and names the problem in a [`WeightsError`]; it never panics
//! on a bad file and never allocates more than the file's own size suggests.

use std::collections::{BTreeMap, HashMap};

use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::model::{UNet, UNetConfig};
use crate::noise::{NOISE_VERSION, NoiseStream, batch_standard_normal};
use crate::schedule::ScheduleConfig;

/// Version of this file layout; loaders refuse other versions.
/// Version 2: the fingerprint probes the raw model output (version 1 probed clipped sampler
/// steps, which could not tell two models apart).
pub const FORMAT_VERSION: u32 = 2;

/// The `__metadata__` key that holds [`WeightsMetadata`] as JSON.
pub const METADATA_KEY: &str = "ddpm_avatars";

/// Why a weights file was refused.
#[derive(Debug, Error)]
pub enum WeightsError {
    /// The bytes are not a safetensors file.
    #[error("not a safetensors file: {0}")]
    NotSafetensors(String),
    /// The file ends before its header or data says it should.
    #[error("the file is truncated: {0}")]
    Truncated(String),
    /// The header claims an absurd size (the format caps it at 100 MB).
    #[error("the safetensors header is too large ({0})")]
    HeaderTooLarge(String),
    /// `__metadata__` or its `ddpm_avatars` entry is absent.
    #[error(
        "no `{METADATA_KEY}` entry in the file's __metadata__: not a ddpm-avatars weights file"
    )]
    MissingMetadata,
    /// The metadata JSON could not be read.
    #[error("the `{METADATA_KEY}` metadata is not valid: {0}")]
    InvalidMetadata(String),
    /// The file was written by a newer or unknown version of the format.
    #[error("unknown weights format version {found} (this build reads version {FORMAT_VERSION})")]
    UnknownFormatVersion {
        /// Version in the file.
        found: u64,
    },
    /// The configuration in the metadata does not describe a usable model or schedule.
    #[error("the metadata's configuration is invalid: {0}")]
    InvalidConfig(String),
    /// A tensor the model needs is not in the file.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    /// The file has a tensor the model does not have.
    #[error("unexpected tensor `{0}` (not part of the configured model)")]
    UnexpectedTensor(String),
    /// One tensor has another shape than the model needs.
    #[error("tensor `{name}` has shape {found:?}, the model needs {expected:?}")]
    WrongShape {
        /// Tensor name.
        name: String,
        /// Shape the configured model needs.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// Many tensors disagree with the configuration: the metadata describes another model.
    #[error(
        "the metadata's UNetConfig does not match the tensors: {mismatched} tensors have other shapes, \
         e.g. `{example}` is {found:?} where the config implies {expected:?}"
    )]
    ConfigMismatch {
        /// Number of tensors whose shapes differ.
        mismatched: usize,
        /// One of them.
        example: String,
        /// Its shape per the config.
        expected: Vec<usize>,
        /// Its shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored in a type other than f16 or f32.
    #[error("tensor `{name}` is stored as {dtype}; only F16 and F32 are supported")]
    WrongDtype {
        /// Tensor name.
        name: String,
        /// Its dtype.
        dtype: String,
    },
    /// A tensor holds NaN or infinity.
    #[error("tensor `{0}` contains NaN or infinite values")]
    NonFinite(String),
    /// Reading a tensor back from the device failed while saving.
    #[error("could not read tensor `{name}` from the device: {message}")]
    ReadBack {
        /// Tensor name.
        name: String,
        /// What burn reported.
        message: String,
    },
    /// Writing or reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How tensors are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageDtype {
    /// Half precision: half the download, no visible change in samples.
    #[default]
    F16,
    /// Single precision, bit-exact.
    F32,
}

/// Size and value range of the images the model makes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    /// Width and height in pixels.
    pub size: usize,
    /// Channels (3: RGB).
    pub channels: usize,
    /// Pixel values the model works in; `[-1, 1]` maps to bytes 0..=255.
    pub value_range: [f32; 2],
}

/// Where the training images came from, and their licence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// A short name, e.g. `dicebear-avatars-20k`.
    pub name: String,
    /// One line naming the licence(s) and creators.
    pub licence: String,
}

/// How much training produced these weights.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Optimiser steps in total (across resumed runs and parents).
    pub steps: u64,
    /// Training images seen in total.
    pub images_seen: u64,
    /// Decay of the exponential moving average the weights come from (0: raw weights).
    pub ema_decay: f64,
    /// Short hash of the weights file training started from, if any.
    pub parent: Option<String>,
    /// Short hashes of every file in the lineage, oldest first, ending with `parent` (empty
    /// for a run from scratch and in files from before lineages were recorded).
    #[serde(default)]
    pub parents: Vec<String>,
    /// CPU time (user + system, all threads) that training took across the lineage, in
    /// hours; 0 where it was not counted (GPU runs, older files).
    #[serde(default)]
    pub cpu_hours: f64,
}

/// Everything the file says about itself (`__metadata__.ddpm_avatars`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsMetadata {
    /// [`FORMAT_VERSION`] at writing time.
    pub format_version: u32,
    /// The architecture; the tensors must match it.
    pub model: UNetConfig,
    /// The noise schedule the model was trained with.
    pub schedule: ScheduleConfig,
    /// Image size and value range.
    pub image: ImageSpec,
    /// Training data and licence.
    pub dataset: DatasetInfo,
    /// Training progress.
    pub training: TrainingInfo,
    /// [`NOISE_VERSION`] of the seeded noise the fingerprint was made with.
    pub noise_version: u32,
    /// Golden values, absent only in files written before training finished.
    pub fingerprint: Option<Fingerprint>,
}

impl WeightsMetadata {
    /// Metadata for a model trained on `dataset` with the given configs; no fingerprint yet.
    pub fn new(
        model: UNetConfig,
        schedule: ScheduleConfig,
        dataset: DatasetInfo,
        training: TrainingInfo,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            image: ImageSpec {
                size: model.image_size,
                channels: model.image_channels,
                value_range: [-1.0, 1.0],
            },
            model,
            schedule,
            dataset,
            training,
            noise_version: NOISE_VERSION,
            fingerprint: None,
        }
    }
}

/// A validated weights file: the model on its device and what the file says about it.
#[derive(Debug)]
pub struct LoadedWeights {
    /// The U-Net with the file's weights (f32 parameters).
    pub model: UNet,
    /// The file's metadata.
    pub metadata: WeightsMetadata,
    /// First 12 hex digits of the file's SHA-256, as used in share links.
    pub short_hash: String,
}

/// First 12 hex digits of the SHA-256 of `bytes`.
pub fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Serialises `model` and `metadata` as safetensors bytes. Reads every tensor back
/// synchronously, so call it natively (the trainer), not on WebGPU in a browser.
pub fn save_to_bytes(
    model: &UNet,
    metadata: &WeightsMetadata,
    dtype: StorageDtype,
) -> Result<Vec<u8>, WeightsError> {
    let json = serde_json::to_string(metadata)
        .map_err(|e| WeightsError::InvalidMetadata(e.to_string()))?;
    let mut tensors = Vec::new();
    for tensor in model.collect(None, None, false) {
        let read_back =
            |message: String| WeightsError::ReadBack { name: tensor.name.clone(), message };
        let data = bridge::to_data(&tensor).map_err(|e| read_back(e.to_string()))?;
        let values: Vec<f32> = data.try_into_vec_as().map_err(|e| read_back(format!("{e:?}")))?;
        let (dtype, bytes) = encode(&values, dtype);
        tensors
            .push((tensor.name.clone(), RawTensor { dtype, shape: tensor.shape.to_vec(), bytes }));
    }
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| WeightsError::NotSafetensors(e.to_string()))
}

/// Writes the file atomically: to a temporary sibling, then renamed over `path`.
pub fn save_to_file(
    path: &std::path::Path,
    model: &UNet,
    metadata: &WeightsMetadata,
    dtype: StorageDtype,
) -> Result<(), WeightsError> {
    let bytes = save_to_bytes(model, metadata, dtype)?;
    let io = |source| WeightsError::Io { path: path.display().to_string(), source };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, &bytes).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// Publishes `model`: rounds it to `dtype`, records the golden fingerprint of the rounded
/// weights (what every loader will compute) in `metadata`, and writes the file atomically.
/// Returns the metadata as written. Native only (reads tensors back synchronously).
pub fn export_to_file(
    path: &std::path::Path,
    model: &UNet,
    mut metadata: WeightsMetadata,
    dtype: StorageDtype,
    device: &Device,
) -> Result<WeightsMetadata, WeightsError> {
    let rounded = load_from_bytes(&save_to_bytes(model, &metadata, dtype)?, device)?.model;
    metadata.fingerprint = Some(Fingerprint::compute(&rounded, &metadata, device)?);
    save_to_file(path, &rounded, &metadata, dtype)?;
    Ok(metadata)
}

/// Reads and validates a weights file from disk, building the model on `device`.
pub fn load_from_file(
    path: &std::path::Path,
    device: &Device,
) -> Result<LoadedWeights, WeightsError> {
    let bytes = std::fs::read(path)
        .map_err(|source| WeightsError::Io { path: path.display().to_string(), source })?;
    load_from_bytes(&bytes, device)
}

/// Validates `bytes` as a weights file and builds the model on `device`. The header is
/// compared with the shapes the metadata's configuration implies before anything is
/// allocated, so a small file cannot ask for a huge model.
pub fn load_from_bytes(bytes: &[u8], device: &Device) -> Result<LoadedWeights, WeightsError> {
    let metadata = read_metadata(bytes)?;
    let file = SafeTensors::deserialize(bytes).map_err(header_error)?;
    check_header(&file, metadata.model.plan().parameter_shapes())?;

    let mut decoded = Vec::new();
    for (name, view) in file.iter() {
        let values = decode(name, view.dtype(), view.data())?;
        decoded.push(bridge::from_data(
            TensorData::new(values, view.shape().to_vec()),
            name.to_string(),
            None,
        ));
    }
    let mut model = metadata.model.init(device);
    let applied = model.apply(decoded, None, None, false);
    if !applied.errors.is_empty() || !applied.missing.is_empty() || !applied.unused.is_empty() {
        return Err(WeightsError::InvalidConfig(format!(
            "burn could not apply the tensors:\n{applied}"
        )));
    }
    Ok(LoadedWeights { model, metadata, short_hash: short_hash(bytes) })
}

/// Compares the file's tensor names, dtypes and shapes with `expected` (from the config).
fn check_header(
    file: &SafeTensors<'_>,
    mut expected: BTreeMap<String, Vec<usize>>,
) -> Result<(), WeightsError> {
    let mut mismatched = Vec::new();
    let mut names = file.names();
    names.sort();
    for name in names {
        let view = file.tensor(name).map_err(header_error)?;
        let Some(expected_shape) = expected.remove(name) else {
            return Err(WeightsError::UnexpectedTensor(name.to_string()));
        };
        if !matches!(view.dtype(), Dtype::F16 | Dtype::F32) {
            let dtype = format!("{:?}", view.dtype());
            return Err(WeightsError::WrongDtype { name: name.to_string(), dtype });
        }
        if view.shape() != expected_shape.as_slice() {
            mismatched.push((name.to_string(), expected_shape, view.shape().to_vec()));
        }
    }
    match mismatched.len() {
        0 => {}
        1 => {
            let (name, expected, found) = mismatched.remove(0);
            return Err(WeightsError::WrongShape { name, expected, found });
        }
        count => {
            let (example, expected, found) = mismatched.remove(0);
            return Err(WeightsError::ConfigMismatch {
                mismatched: count,
                example,
                expected,
                found,
            });
        }
    }
    match expected.into_keys().next() {
        Some(missing) => Err(WeightsError::MissingTensor(missing)),
        None => Ok(()),
    }
}

/// Parses and checks the `__metadata__` of a weights file without touching its tensors.
pub fn read_metadata(bytes: &[u8]) -> Result<WeightsMetadata, WeightsError> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(header_error)?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|entries| entries.get(METADATA_KEY))
        .ok_or(WeightsError::MissingMetadata)?;
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| WeightsError::InvalidMetadata(e.to_string()))?;
    match value.get("format_version").and_then(serde_json::Value::as_u64) {
        Some(version) if version == u64::from(FORMAT_VERSION) => {}
        Some(found) => return Err(WeightsError::UnknownFormatVersion { found }),
        None => return Err(WeightsError::InvalidMetadata("no numeric `format_version`".into())),
    }
    let metadata: WeightsMetadata =
        serde_json::from_value(value).map_err(|e| WeightsError::InvalidMetadata(e.to_string()))?;
    metadata.model.validate().map_err(WeightsError::InvalidConfig)?;
    metadata.schedule.validate().map_err(WeightsError::InvalidConfig)?;
    if metadata.image.size != metadata.model.image_size
        || metadata.image.channels != metadata.model.image_channels
    {
        return Err(WeightsError::InvalidConfig(format!(
            "image spec {}x{}x{} disagrees with the model config",
            metadata.image.size, metadata.image.size, metadata.image.channels
        )));
    }
    Ok(metadata)
}

fn header_error(error: SafeTensorError) -> WeightsError {
    match error {
        SafeTensorError::HeaderTooLarge => WeightsError::HeaderTooLarge(error.to_string()),
        SafeTensorError::HeaderTooSmall
        | SafeTensorError::InvalidHeaderLength
        | SafeTensorError::MetadataIncompleteBuffer => WeightsError::Truncated(error.to_string()),
        other => WeightsError::NotSafetensors(other.to_string()),
    }
}

/// Little-endian bytes of `values` in the storage type.
fn encode(values: &[f32], dtype: StorageDtype) -> (Dtype, Vec<u8>) {
    match dtype {
        StorageDtype::F16 => (
            Dtype::F16,
            values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
        ),
        StorageDtype::F32 => (Dtype::F32, values.iter().flat_map(|v| v.to_le_bytes()).collect()),
    }
}

/// f32 values of a stored tensor; rejects other dtypes and non-finite values.
fn decode(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, WeightsError> {
    let values: Vec<f32> = match dtype {
        Dtype::F16 => {
            bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        Dtype::F32 => {
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
        other => {
            return Err(WeightsError::WrongDtype {
                name: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(WeightsError::NonFinite(name.to_string()));
    }
    Ok(values)
}

/// A tensor ready for `safetensors::serialize`.
struct RawTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for RawTensor {
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

/// Values of the model's output the fingerprint records.
const FINGERPRINT_VALUES: usize = 32;

/// Largest absolute difference between the recorded and a freshly computed fingerprint that
/// still counts as "computes what the trainer computed". The probe is the raw model output
/// (values of order 1): f32 on another backend differs by ~1e-5 (measured in
/// `tests/weights.rs` and in chromium), while perturbing the weights by 1% moves it by ~1e-2.
pub const FINGERPRINT_TOLERANCE: f32 = 1e-3;

/// Values of the model's raw output for a fixed input, recorded by the exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Seed of the input noise ([`NoiseStream::Initial`], one image per timestep).
    pub seed: u64,
    /// The 0-based timesteps the model is asked about, one image each.
    pub timesteps: Vec<usize>,
    /// Evenly spaced values of the predicted noise `eps_theta(x, t)`, clipping off.
    pub values: Vec<f32>,
}

/// Why a freshly computed fingerprint does not match the recorded one.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FingerprintMismatch {
    /// The probe gave another number of values than the file records.
    #[error("the fingerprint has {found} values, the file records {expected}")]
    Length {
        /// Values recorded in the file.
        expected: usize,
        /// Values computed.
        found: usize,
    },
    /// NaN or infinity among the values (computed or recorded).
    #[error("the fingerprint holds NaN or infinite values")]
    NonFinite,
    /// The values differ by more than [`FINGERPRINT_TOLERANCE`].
    #[error(
        "the fingerprint differs from the trainer's by up to {largest} (tolerance {FINGERPRINT_TOLERANCE})"
    )]
    Differs {
        /// Largest absolute difference.
        largest: f32,
    },
}

/// The fingerprint's input: seed 0, and the model asked about the middle of the schedule and
/// a late, low-noise step (`T / 2` and `T / 10`, 0-based), where a trained model's output
/// depends on every layer. Clipping plays no part: the sampler is not involved.
pub fn fingerprint_input(schedule: &ScheduleConfig) -> (u64, Vec<usize>) {
    (0, vec![schedule.timesteps / 2, schedule.timesteps / 10])
}

/// Runs the model on the fingerprint's input and returns evenly spaced values of its raw
/// output as one tensor. Read it back (sync natively, async in the browser) and compare with
/// [`Fingerprint::check`].
pub fn fingerprint_probe(model: &UNet, metadata: &WeightsMetadata, device: &Device) -> Tensor<1> {
    let (seed, timesteps) = fingerprint_input(&metadata.schedule);
    let (channels, size) = (metadata.image.channels, metadata.image.size);
    let batch = timesteps.len();
    let per_image = channels * size * size;
    let x = batch_standard_normal(seed, batch, NoiseStream::Initial, per_image);
    let x = Tensor::<4>::from_data(TensorData::new(x, [batch, channels, size, size]), device);
    let timesteps: Vec<f32> = timesteps.iter().map(|&t| t as f32).collect();
    let timesteps = Tensor::<1>::from_data(TensorData::new(timesteps, [batch]), device);
    let predicted_noise = model.forward(x, timesteps);

    let total = batch * per_image;
    let stride = total / FINGERPRINT_VALUES;
    let indices: Vec<i64> =
        (0..FINGERPRINT_VALUES).map(|i| (i * stride + stride / 2) as i64).collect();
    let indices =
        Tensor::<1, Int>::from_data(TensorData::new(indices, [FINGERPRINT_VALUES]), device);
    predicted_noise.reshape([total]).select(0, indices)
}

impl Fingerprint {
    /// Computes the fingerprint of `model` natively (synchronous read-back).
    pub fn compute(
        model: &UNet,
        metadata: &WeightsMetadata,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let (seed, timesteps) = fingerprint_input(&metadata.schedule);
        let values = fingerprint_probe(model, metadata, device)
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| WeightsError::ReadBack {
            name: "fingerprint".into(),
            message: format!("{e:?}"),
        })?;
        Ok(Self { seed, timesteps, values })
    }

    /// Compares freshly computed `values` with the recorded ones: `Ok` holds the largest
    /// absolute difference when it is within [`FINGERPRINT_TOLERANCE`]; NaN never passes.
    pub fn check(&self, values: &[f32]) -> Result<f32, FingerprintMismatch> {
        if values.len() != self.values.len() {
            return Err(FingerprintMismatch::Length {
                expected: self.values.len(),
                found: values.len(),
            });
        }
        // f32::max drops NaN, so non-finite values are refused before taking the largest.
        if values.iter().chain(&self.values).any(|v| !v.is_finite()) {
            return Err(FingerprintMismatch::NonFinite);
        }
        let largest =
            self.values.iter().zip(values).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        if largest <= FINGERPRINT_TOLERANCE {
            Ok(largest)
        } else {
            Err(FingerprintMismatch::Differs { largest })
        }
    }
}
