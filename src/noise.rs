//! Seeded Gaussian noise that is bit-identical on every platform.
//!
//! Share links promise that a seed reproduces an avatar, in the browser (wasm) and in the
//! trainer (native). So the noise never comes from a GPU generator or from the platform's
//! maths library: it is generated on the CPU by
//!
//! - **ChaCha8** (`rand_chacha`) keyed by the seed, one ChaCha *stream* per use
//!   (`x_T`, or the fresh noise of step `t`), so each step's noise is addressable on its own;
//! - **Box-Muller** in f64 with `libm`'s `log`, `sin` and `cos` (a pure-Rust port of musl's
//!   libm, the same code on every target), rounded once to f32.
//!
//! A batch uses the seeds `seed, seed + 1, ...`, one per image, so image `i` of a batch is
//! the same avatar as image 0 of a batch started at `seed + i`.
//!
//! [`NOISE_VERSION`] names this recipe; change it whenever the numbers change.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Version of the noise recipe. Any change to the numbers produced must bump it.
pub const NOISE_VERSION: u32 = 1;

/// Domain-separation tag placed in the ChaCha key after the seed.
const KEY_TAG: &[u8; 24] = b"ddpm-avatars/noise/v1\0\0\0";

/// Which noise a draw is for; each has its own ChaCha stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseStream {
    /// The starting point `x_T`.
    Initial,
    /// The fresh noise `z` added by the reverse step at 0-based timestep `t`.
    Step(usize),
    /// Noise for purposes other than sampling (training targets, tests), numbered freely.
    Aux(u32),
}

impl NoiseStream {
    fn id(self) -> u64 {
        match self {
            Self::Initial => u64::MAX,
            Self::Step(t) => t as u64,
            Self::Aux(n) => (1 << 40) + u64::from(n),
        }
    }
}

/// `len` standard-normal f32 values for one image `seed` and one `stream`.
pub fn standard_normal(seed: u64, stream: NoiseStream, len: usize) -> Vec<f32> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..].copy_from_slice(KEY_TAG);
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream.id());

    let mut values = Vec::with_capacity(len + 1);
    while values.len() < len {
        let (z0, z1) = box_muller(open_unit(&mut rng), open_unit(&mut rng));
        values.push(z0 as f32);
        values.push(z1 as f32);
    }
    values.truncate(len);
    values
}

/// Noise for a batch: the images' values one after the other (`[batch, ..]` row-major), image
/// `i` drawn with seed `seed + i`.
pub fn batch_standard_normal(
    seed: u64,
    batch: usize,
    stream: NoiseStream,
    per_image: usize,
) -> Vec<f32> {
    (0..batch as u64)
        .flat_map(|i| standard_normal(seed.wrapping_add(i), stream, per_image))
        .collect()
}

/// A uniform draw in `(0, 1]` with 53 random bits, so `ln` below never sees zero.
fn open_unit(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Box-Muller: two independent N(0, 1) values from two uniforms in `(0, 1]`.
fn box_muller(u1: f64, u2: f64) -> (f64, f64) {
    let radius = (-2.0 * libm::log(u1)).sqrt();
    let angle = 2.0 * std::f64::consts::PI * u2;
    (radius * libm::cos(angle), radius * libm::sin(angle))
}

/// Spherical interpolation between two noise vectors (Shoemake 1985), as used to interpolate
/// `x_T` in DDIM (Song et al. 2021, section 5.3):
/// `slerp(a, b, w) = sin((1 - w) theta) / sin(theta) a + sin(w theta) / sin(theta) b`, with
/// `theta` the angle between `a` and `b`. Unlike a straight line it keeps the norm a
/// Gaussian sample has (about `sqrt(len)`), so every point along the way is plausible noise.
/// Falls back to the straight line when the vectors are (anti)parallel.
///
/// # Panics
/// If `a` and `b` differ in length (a bug in the caller, never user data).
pub fn slerp(a: &[f32], b: &[f32], w: f64) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "slerp needs vectors of equal length");
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let cosine = (dot / (norm(a) * norm(b))).clamp(-1.0, 1.0);
    let theta = cosine.acos();
    let (weight_a, weight_b) = if theta.sin().abs() < 1e-6 {
        (1.0 - w, w)
    } else {
        (((1.0 - w) * theta).sin() / theta.sin(), (w * theta).sin() / theta.sin())
    };
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (weight_a * f64::from(x) + weight_b * f64::from(y)) as f32)
        .collect()
}
