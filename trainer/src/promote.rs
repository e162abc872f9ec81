//! `promote`: a newly trained weights file replaces the committed one only if it predicts the
//! noise better on the held-out images. Both files are evaluated here, in one process, on the
//! same held-out split with the same `(t, eps)` ([`crate::eval`]), so the comparison does not
//! depend on when or where each was trained. The committed file is replaced by a rename, so it
//! is always either the old file or the new one, never half of either.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use ddpm_avatars::weights::{LoadedWeights, load_from_file};
use serde::Serialize;

use crate::eval::{self, Evaluation};
use crate::report::write_atomically;

/// One file's held-out score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// Short hash of the file (as in share links and `parents`).
    pub hash: String,
    /// Optimiser steps in its lineage.
    pub steps: u64,
    /// Training images seen in its lineage.
    pub images_seen: u64,
    /// CPU-hours of training in its lineage.
    pub cpu_hours: f64,
    /// Held-out eps-MSE.
    pub eps_mse: f64,
}

/// What [`promote`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The new file.
    pub candidate: Scored,
    /// The committed file before the decision (absent: there was none).
    pub committed: Option<Scored>,
    /// Held-out images both were evaluated on.
    pub heldout_images: usize,
    /// Whether the candidate replaced the committed file.
    pub promoted: bool,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Scored { hash, eps_mse, .. } = &self.candidate;
        write!(
            f,
            "held-out eps-MSE over {} images: candidate {hash} {eps_mse:.6}",
            self.heldout_images
        )?;
        match &self.committed {
            Some(old) => write!(f, ", committed {} {:.6}", old.hash, old.eps_mse)?,
            None => write!(f, ", no committed file")?,
        }
        let outcome = if self.promoted {
            "the candidate replaces the committed file"
        } else {
            "not better: the committed file stays"
        };
        write!(f, "; {outcome}")
    }
}

/// Evaluates `candidate` and the file at `committed` (if there is one) on `heldout` (planar
/// `[-1, 1]` values, see [`crate::data::ImageDataset::heldout`]) and copies `candidate` over
/// `committed` when its eps-MSE is strictly lower, or when there is no committed file.
///
/// Refused, leaving `committed` untouched: a candidate or committed file that does not load
/// (broken, foreign, wrong fingerprint), and a candidate of another model config (it could
/// never continue the committed file's lineage).
pub fn promote(
    candidate: &Path,
    committed: &Path,
    heldout: &[f32],
    batch: usize,
    device: &Device,
) -> Result<Verdict> {
    let new = load_from_file(candidate, device)
        .with_context(|| format!("candidate {}", candidate.display()))?;
    let old = if committed.exists() {
        let old = load_from_file(committed, device).with_context(|| {
            format!("committed weights {} (left as they are)", committed.display())
        })?;
        if old.metadata.model != new.metadata.model {
            bail!(
                "candidate {} has another model config than the committed {}: refusing to \
                 replace it",
                candidate.display(),
                committed.display()
            );
        }
        Some(old)
    } else {
        None
    };
    let size = new.metadata.image.size;
    let score = |weights: &LoadedWeights| {
        let Evaluation { eps_mse, images } =
            eval::eps_mse(&weights.model, weights.metadata.schedule, heldout, size, batch, device);
        let training = &weights.metadata.training;
        let scored = Scored {
            hash: weights.short_hash.clone(),
            steps: training.steps,
            images_seen: training.images_seen,
            cpu_hours: training.cpu_hours,
            eps_mse,
        };
        (scored, images)
    };
    let (candidate_score, heldout_images) = score(&new);
    if heldout_images == 0 {
        bail!("no held-out images to compare on");
    }
    let committed_score = old.as_ref().map(|old| score(old).0);
    let promoted = committed_score.as_ref().is_none_or(|old| {
        candidate_score.eps_mse < old.eps_mse && candidate_score.eps_mse.is_finite()
    });
    if promoted {
        replace_atomically(candidate, committed)?;
    }
    Ok(Verdict { candidate: candidate_score, committed: committed_score, heldout_images, promoted })
}

/// Copies `from` onto `to` through a temporary file and a rename ([`write_atomically`]).
fn replace_atomically(from: &Path, to: &Path) -> Result<()> {
    if let Some(folder) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_atomically(to, &bytes)
}
