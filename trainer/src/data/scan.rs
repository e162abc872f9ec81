//! The folder walk: every image file under a folder, and a fingerprint of what was found.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// File name extensions (lower case) of the images a folder may hold.
const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// An image file found in the folder.
pub(super) struct ImageFile {
    pub(super) path: PathBuf,
    /// Path relative to the folder, `/`-separated: the sort key and the held-out hash input.
    pub(super) relative: String,
    len: u64,
    modified_ns: u128,
}

/// Appends the image files under `folder` (recursively, not following links to folders).
pub(super) fn collect_image_files(
    folder: &Path,
    prefix: &str,
    files: &mut Vec<ImageFile>,
) -> anyhow::Result<()> {
    let entries =
        fs::read_dir(folder).with_context(|| format!("reading folder {}", folder.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading folder {}", folder.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            collect_image_files(&path, &relative, files)?;
            continue;
        }
        let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        if !extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
            continue;
        }
        // A file whose metadata cannot be read is still listed: decoding it fails and counts it.
        let metadata = fs::metadata(&path).ok();
        let len = metadata.as_ref().map_or(0, |m| m.len());
        let modified_ns = metadata
            .and_then(|m| m.modified().ok())
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |age| age.as_nanos());
        files.push(ImageFile { path, relative, len, modified_ns });
    }
    Ok(())
}

/// SHA-256 over the sorted relative paths, sizes and modification times, hex.
pub(super) fn folder_fingerprint(files: &[ImageFile]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.relative.as_bytes());
        hasher.update([0]);
        hasher.update(file.len.to_le_bytes());
        hasher.update(file.modified_ns.to_le_bytes());
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::data::test_support::{TempDir, numbered, save, write_numbered};

    #[test]
    fn non_image_files_are_ignored_not_counted() {
        let dir = TempDir::new("non-image");
        write_numbered(&dir.images(), 0..3);
        fs::write(dir.images().join("README.txt"), b"avatars").unwrap();
        fs::write(dir.images().join(".DS_Store"), b"\0\0").unwrap();
        fs::write(dir.images().join("labels.json"), b"{}").unwrap();
        let report = dir.load(1).unwrap().report().clone();
        assert_eq!((report.loaded, report.skipped), (3, 0));
    }

    #[test]
    fn loads_png_jpeg_and_webp_recursively() {
        let dir = TempDir::new("formats");
        save(&numbered(1), &dir.images().join("a.png"));
        save(&numbered(2), &dir.images().join("sub/b.JPG"));
        save(&numbered(3), &dir.images().join("sub/deeper/c.webp"));
        let dataset = dir.load(1).unwrap();
        assert_eq!((dataset.report().loaded, dataset.report().skipped), (3, 0));
        assert_eq!(dataset.image_size(), 8);
    }
}
