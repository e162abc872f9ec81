//! The native half of ddpm-avatars: builds the avatar dataset, trains the U-Net of the core
//! crate on a GPU (or the CPU), and exports, samples, evaluates and benchmarks weights.
//!
//! Data flow: `data` (images -> packed cache) -> `train` (checkpoints, EMA, grids) ->
//! `export` (weights.safetensors) -> the page, `sample`, `eval`.

pub mod avatars;
pub mod bench;
pub mod checkpoint;
pub mod clip;
pub mod data;
pub mod device;
pub mod ema;
pub mod eval;
pub mod export;
pub mod precision;
pub mod progress;
pub mod promote;
pub mod report;
pub mod sample;
pub mod train;
