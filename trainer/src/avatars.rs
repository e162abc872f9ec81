//! The built-in avatar dataset (`trainer data avatars`): 64x64 PNGs rendered by DiceBear styles
//! and resvg in one node process (`trainer/avatars/render.mjs`, where the layout, seeds, styles
//! and backgrounds are documented). This module installs the pinned npm packages when needed,
//! runs the script and checks what it wrote.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};

/// Folder holding `package.json`, `package-lock.json` and `render.mjs`.
const SCRIPT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/avatars");

/// What `build_avatar_dataset` produced.
#[derive(Debug, Clone, PartialEq)]
pub struct AvatarDatasetReport {
    /// Number of avatar PNGs in `out` (`avatar-000000.png` ..).
    pub count: usize,
    /// Dataset folder, absolute; also holds `LICENSE.md` and `manifest.json`.
    pub out: PathBuf,
    /// DiceBear styles the images were drawn from, in the order image `n` cycles through them.
    pub styles: Vec<String>,
    /// Wall-clock time of the whole build (npm install included), in seconds.
    pub seconds: f64,
    /// True when `out` already held this exact set and nothing was rendered.
    pub already_complete: bool,
}

impl fmt::Display for AvatarDatasetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.already_complete { "already had" } else { "rendered" };
        write!(
            f,
            "{} {verb} {} avatars ({}) in {:.1} s; licences in {}",
            self.out.display(),
            self.count,
            self.styles.join(", "),
            self.seconds,
            self.out.join("LICENSE.md").display()
        )
    }
}

/// True when both `node` and `npm` can be run from `PATH`.
pub fn node_available() -> bool {
    tool_runs("node") && tool_runs("npm")
}

/// Renders `count` avatars into `out` (created if missing): image `n` is
/// `out/avatar-<n padded to 6 digits>.png`, plus `LICENSE.md` (each style's creator and licence)
/// and `manifest.json`. The same `count` always gives byte-identical files; when `out` already
/// holds the complete set, nothing is rendered. Runs `npm ci` in `trainer/avatars` first when
/// `node_modules` is missing or older than the lockfile.
///
/// # Errors
/// When `count` is 0, `node` or `npm` is missing, `npm ci` or the script fails, or the folder
/// does not end up with exactly the expected files.
pub fn build_avatar_dataset(count: usize, out: &Path) -> Result<AvatarDatasetReport> {
    let started = Instant::now();
    ensure!(count > 0, "the avatar count must be at least 1");
    if !node_available() {
        let missing: Vec<&str> = ["node", "npm"].into_iter().filter(|t| !tool_runs(t)).collect();
        bail!(
            "`{}` not found: the avatar dataset is rendered with Node.js; install Node.js 18 or \
             newer with npm (Debian/Ubuntu: `apt-get install nodejs npm`)",
            missing.join("` and `")
        );
    }
    let script_dir = Path::new(SCRIPT_DIR);
    if npm_install_needed(script_dir)? {
        eprintln!("installing the avatar renderer's npm packages in {}", script_dir.display());
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(script_dir)
            .status()
            .context("could not start `npm ci`")?;
        ensure!(status.success(), "`npm ci` in {} failed ({status})", script_dir.display());
    }

    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the dataset folder {}", out.display()))?;
    let out = std::path::absolute(out)
        .with_context(|| format!("cannot resolve the dataset folder {}", out.display()))?;
    let output = Command::new("node")
        .arg("render.mjs")
        .arg("--count")
        .arg(count.to_string())
        .arg("--out")
        .arg(&out)
        .current_dir(script_dir)
        .stderr(Stdio::inherit())
        .output()
        .context("could not start `node render.mjs`")?;
    ensure!(
        output.status.success(),
        "`node render.mjs --count {count} --out {}` in {} failed ({})",
        out.display(),
        script_dir.display(),
        output.status
    );
    let summary = parse_summary(&output.stdout)?;
    ensure!(
        summary.count == count,
        "render.mjs reported {} avatars, expected {count}",
        summary.count
    );
    check_files(count, &out)?;

    Ok(AvatarDatasetReport {
        count,
        out,
        styles: summary.styles,
        seconds: started.elapsed().as_secs_f64(),
        already_complete: summary.skipped,
    })
}

/// render.mjs's last stdout line: `{"count": N, "styles": [..], "skipped": bool}`.
#[derive(Debug, PartialEq)]
struct RenderSummary {
    count: usize,
    styles: Vec<String>,
    skipped: bool,
}

/// File name of image `n`, as render.mjs writes it.
fn avatar_file_name(n: usize) -> String {
    format!("avatar-{n:06}.png")
}

fn tool_runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `npm ci` is due when `node_modules/.package-lock.json` (written by npm after an install) is
/// missing or older than `package-lock.json`.
fn npm_install_needed(script_dir: &Path) -> Result<bool> {
    let lockfile = script_dir.join("package-lock.json");
    let locked = modified(&lockfile)
        .with_context(|| format!("cannot read the npm lockfile {}", lockfile.display()))?;
    Ok(modified(&script_dir.join("node_modules/.package-lock.json"))
        .map_or(true, |installed| installed < locked))
}

fn modified(path: &Path) -> std::io::Result<SystemTime> {
    std::fs::metadata(path)?.modified()
}

fn parse_summary(stdout: &[u8]) -> Result<RenderSummary> {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("render.mjs printed no JSON summary, got {line:?}"))?;
    let count = summary["count"].as_u64().and_then(|c| usize::try_from(c).ok());
    let styles = summary["styles"].as_array().map(|styles| {
        styles.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect::<Vec<_>>()
    });
    let skipped = summary["skipped"].as_bool();
    match (count, styles, skipped) {
        (Some(count), Some(styles), Some(skipped)) => Ok(RenderSummary { count, styles, skipped }),
        _ => bail!("render.mjs printed an incomplete summary: {line}"),
    }
}

/// Checks that `out` holds exactly images `0..count`, the licence and the manifest.
fn check_files(count: usize, out: &Path) -> Result<()> {
    for name in ["LICENSE.md", "manifest.json"] {
        ensure!(out.join(name).is_file(), "render.mjs did not write {}", out.join(name).display());
    }
    if let Some(n) = (0..count).find(|&n| !out.join(avatar_file_name(n)).is_file()) {
        bail!("render.mjs did not write {}", out.join(avatar_file_name(n)).display());
    }
    let entries =
        std::fs::read_dir(out).with_context(|| format!("cannot list {}", out.display()))?;
    let mut pngs = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", out.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        pngs += usize::from(name.starts_with("avatar-") && name.ends_with(".png"));
    }
    ensure!(pngs == count, "{} holds {pngs} avatar PNGs, expected {count}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_zero_padded_to_six_digits() {
        assert_eq!(avatar_file_name(0), "avatar-000000.png");
        assert_eq!(avatar_file_name(123), "avatar-000123.png");
        assert_eq!(avatar_file_name(1_234_567), "avatar-1234567.png");
    }

    #[test]
    fn summary_line_is_parsed_from_the_last_stdout_line() -> Result<()> {
        let stdout = b"noise\n{\"count\":3,\"styles\":[\"lorelei\",\"micah\"],\"skipped\":true}\n";
        let expected = RenderSummary {
            count: 3,
            styles: vec!["lorelei".into(), "micah".into()],
            skipped: true,
        };
        assert_eq!(parse_summary(stdout)?, expected);
        assert!(parse_summary(b"").is_err());
        assert!(parse_summary(b"{\"count\":3}").is_err());
        Ok(())
    }

    #[test]
    fn zero_count_is_an_error() {
        let out = std::env::temp_dir().join("avatars-zero-count-never-created");
        assert!(build_avatar_dataset(0, &out).is_err());
        assert!(!out.exists());
    }
}
