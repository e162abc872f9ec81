//! The dataset cache: the decoded images of one folder at one size in a single file, so the
//! next load is one read. A cache that is missing, damaged, of another version, size or
//! folder content is rebuilt, never an error.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ImageDataset, LoadReport};

/// First bytes of a cache file.
const CACHE_MAGIC: [u8; 8] = *b"DDPMDSET";
/// Bump when the cache layout or the decoding (crop, filter, alpha) changes.
const CACHE_VERSION: u32 = 1;
/// A header larger than this is corrupt (it holds a few hundred numbers and names).
const MAX_HEADER_BYTES: u32 = 16 << 20;

/// The cache file's JSON header, after magic, version and header length.
#[derive(Serialize, Deserialize)]
struct CacheHeader {
    image_size: usize,
    count: usize,
    /// [`super::scan::folder_fingerprint`] of the folder the images came from, hex.
    fingerprint: String,
    heldout: Vec<usize>,
    skipped: usize,
    first_skipped: Vec<String>,
}

/// Loads the cache if it holds `image_size` images of the folder with `fingerprint` (of any
/// folder for `None`: a dataset file given as `--data`, see [`ImageDataset::load`]).
/// `Err(None)`: there is no cache; `Err(Some(reason))`: it exists but cannot be used.
pub(super) fn read_cache(
    path: &Path,
    image_size: usize,
    fingerprint: Option<&str>,
) -> Result<ImageDataset, Option<String>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(None),
        Err(error) => return Err(Some(error.to_string())),
    };
    let io_error = |error: io::Error| Some(format!("unreadable or truncated ({error})"));
    let mut prefix = [0; 16];
    file.read_exact(&mut prefix).map_err(io_error)?;
    if prefix[..8] != CACHE_MAGIC {
        return Err(Some("not a dataset cache (bad magic)".into()));
    }
    let version = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
    if version != CACHE_VERSION {
        return Err(Some(format!("cache version {version}, expected {CACHE_VERSION}")));
    }
    let header_len = u32::from_le_bytes([prefix[12], prefix[13], prefix[14], prefix[15]]);
    if header_len > MAX_HEADER_BYTES {
        return Err(Some(format!("header of {header_len} bytes is corrupt")));
    }
    let mut header_bytes = vec![0; header_len as usize];
    file.read_exact(&mut header_bytes).map_err(io_error)?;
    let header: CacheHeader = serde_json::from_slice(&header_bytes)
        .map_err(|error| Some(format!("corrupt header ({error})")))?;
    if header.image_size != image_size {
        return Err(Some(format!("holds {0}x{0} images, not {image_size}", header.image_size)));
    }
    if fingerprint.is_some_and(|fingerprint| header.fingerprint != fingerprint) {
        return Err(Some("the image folder changed since it was written".into()));
    }
    let pixel_len = header
        .count
        .checked_mul(3 * image_size * image_size)
        .filter(|&len| len > 0)
        .ok_or_else(|| Some(format!("corrupt image count {}", header.count)))?;
    let expected_file_len = 16 + u64::from(header_len) + pixel_len as u64;
    let file_len = file.metadata().map_err(io_error)?.len();
    if file_len != expected_file_len {
        return Err(Some(format!("{file_len} bytes, expected {expected_file_len} (truncated?)")));
    }
    let heldout_valid = header.heldout.windows(2).all(|pair| pair[0] < pair[1])
        && header.heldout.last().is_none_or(|&last| last < header.count)
        && header.heldout.len() < header.count;
    if !heldout_valid {
        return Err(Some("corrupt held-out list".into()));
    }
    let mut pixels = vec![0; pixel_len];
    file.read_exact(&mut pixels).map_err(io_error)?;
    let report = LoadReport {
        loaded: header.count,
        skipped: header.skipped,
        first_skipped: header.first_skipped,
        from_cache: true,
    };
    Ok(ImageDataset::new(image_size, pixels, header.heldout, report))
}

/// Writes the cache: magic, version (u32 LE), header length (u32 LE), JSON [`CacheHeader`], then
/// the images' bytes as held in memory. It goes to a temporary name next to `path` first and is
/// renamed into place, so a reader never sees a half-written file.
pub(super) fn write_cache(
    path: &Path,
    dataset: &ImageDataset,
    fingerprint: &str,
) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let header = CacheHeader {
        image_size: dataset.image_size,
        count: dataset.report.loaded,
        fingerprint: fingerprint.to_owned(),
        heldout: dataset.heldout.clone(),
        skipped: dataset.report.skipped,
        first_skipped: dataset.report.first_skipped.clone(),
    };
    let header_bytes = serde_json::to_vec(&header).map_err(io::Error::other)?;
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp_path = path.with_file_name(temp_name);
    let written = (|| {
        let mut file = BufWriter::new(File::create(&temp_path)?);
        file.write_all(&CACHE_MAGIC)?;
        file.write_all(&CACHE_VERSION.to_le_bytes())?;
        file.write_all(&(header_bytes.len() as u32).to_le_bytes())?;
        file.write_all(&header_bytes)?;
        file.write_all(&dataset.pixels)?;
        file.into_inner().map_err(|error| error.into_error())?.sync_all()
    })();
    match written.and_then(|()| fs::rename(&temp_path, path)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = fs::remove_file(&temp_path);
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::CACHE_VERSION;
    use crate::data::ImageDataset;
    use crate::data::test_support::{TempDir, write_numbered};

    #[test]
    fn cache_is_reused_while_the_folder_is_unchanged() {
        let dir = TempDir::new("cache-reuse");
        write_numbered(&dir.images(), 0..20);
        fs::write(dir.images().join("bad.png"), b"junk").unwrap();
        let built = dir.load(1).unwrap();
        assert!(!built.report().from_cache);
        let cached = dir.load(1).unwrap();
        assert!(cached.report().from_cache);
        assert_eq!((cached.report().loaded, cached.report().skipped), (20, 1));
        assert_eq!(cached.report().first_skipped, built.report().first_skipped);
        assert_eq!(cached.pixels, built.pixels);
        assert_eq!(cached.heldout, built.heldout);
        assert_eq!(cached.batch(1, 2, 8), built.batch(1, 2, 8));
    }

    #[test]
    fn cache_is_rebuilt_when_a_file_is_added() {
        let dir = TempDir::new("cache-added");
        write_numbered(&dir.images(), 0..10);
        dir.load(1).unwrap();
        write_numbered(&dir.images().join("more"), 10..11);
        let rebuilt = dir.load(1).unwrap();
        assert!(!rebuilt.report().from_cache);
        assert_eq!(rebuilt.report().loaded, 11);
        assert!(dir.load(1).unwrap().report().from_cache);
    }

    #[test]
    fn cache_is_rebuilt_for_another_image_size() {
        let dir = TempDir::new("cache-size");
        write_numbered(&dir.images(), 0..4);
        dir.load(1).unwrap();
        let resized = ImageDataset::load(&dir.images(), 4, &dir.cache(), 1).unwrap();
        assert!(!resized.report().from_cache);
        assert_eq!(resized.image_size(), 4);
    }

    /// Damages the cache with `damage`, then checks the next load rebuilds and rewrites it.
    fn assert_rebuilt_after(name: &str, damage: impl Fn(&Path)) {
        let dir = TempDir::new(name);
        write_numbered(&dir.images(), 0..10);
        let built = dir.load(1).unwrap();
        damage(&dir.cache());
        let rebuilt = dir.load(1).unwrap();
        assert!(!rebuilt.report().from_cache);
        assert_eq!(rebuilt.pixels, built.pixels);
        assert!(dir.load(1).unwrap().report().from_cache, "the rebuilt cache is written back");
    }

    #[test]
    fn corrupted_cache_is_ignored_and_rebuilt() {
        assert_rebuilt_after("cache-magic", |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[0] ^= 0xff;
            fs::write(path, bytes).unwrap();
        });
        assert_rebuilt_after("cache-header", |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[16..40].fill(b'#');
            fs::write(path, bytes).unwrap();
        });
        assert_rebuilt_after("cache-garbage", |path| fs::write(path, b"garbage").unwrap());
    }

    #[test]
    fn truncated_cache_is_ignored_and_rebuilt() {
        assert_rebuilt_after("cache-truncated", |path| {
            let file = fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(file.metadata().unwrap().len() - 1).unwrap();
        });
        assert_rebuilt_after("cache-empty", |path| fs::write(path, b"").unwrap());
    }

    #[test]
    fn cache_of_another_version_is_ignored_and_rebuilt() {
        assert_rebuilt_after("cache-version", |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[8..12].copy_from_slice(&(CACHE_VERSION + 1).to_le_bytes());
            fs::write(path, bytes).unwrap();
        });
    }
}
