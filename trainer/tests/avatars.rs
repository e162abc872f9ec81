//! `trainer data avatars` renders the built-in dataset: the exact number of distinct 64x64 PNGs,
//! a licence file taken from the DiceBear styles' metadata, and the same bytes on every run.
//! Needs `node` and `npm` (and the npm registry on the first run, for `npm ci`): `make test`
//! installs them first (`make setup`), so a missing `node` fails this test instead of passing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use trainer::avatars::node_available;

/// A folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir()
            .join(format!("trainer-avatars-test-{}-{label}", std::process::id()));
        // A left-over folder from an earlier run with the same pid would make the run a no-op.
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn build_avatars(count: usize, out: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["data", "avatars", "--count", &count.to_string(), "--out"])
        .arg(out)
        .output()
        .expect("run the trainer binary");
    assert!(
        output.status.success(),
        "trainer data avatars --count {count} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// File name -> bytes of every PNG in `dir`.
fn read_pngs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut pngs = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("list the dataset folder") {
        let path = entry.expect("read a dataset entry").path();
        if path.extension().is_some_and(|ext| ext == "png") {
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            pngs.insert(name, std::fs::read(&path).expect("read an avatar"));
        }
    }
    pngs
}

#[test]
fn data_avatars_writes_distinct_64px_pngs_with_licence_deterministically() {
    assert!(
        node_available(),
        "`node` and `npm` are needed to render the avatar set and were not found on PATH: run \
         `make setup` (which `make test` runs first) or install Node.js 18+ with npm"
    );

    let first = TempDir::new("32");
    build_avatars(32, &first.0);
    let pngs = read_pngs(&first.0);
    assert_eq!(pngs.len(), 32, "PNG files in {}", first.0.display());
    for (name, bytes) in &pngs {
        let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .unwrap_or_else(|error| panic!("{name} does not decode as PNG: {error}"));
        assert_eq!((image.width(), image.height()), (64, 64), "size of {name}");
    }
    let names: Vec<&String> = pngs.keys().collect();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            assert_ne!(pngs[*a], pngs[*b], "{a} and {b} are the same image");
        }
    }

    let licence = std::fs::read_to_string(first.0.join("LICENSE.md")).expect("read LICENSE.md");
    assert!(licence.contains("CC0") || licence.contains("CC BY"), "no licence in:\n{licence}");
    // Creators named in @dicebear/collection 9.4.3's style metadata.
    let creators = ["Lisa Wischofsky", "Zoish", "Ashley Seo", "Micah Lanier", "Draftbit"];
    assert!(creators.iter().any(|c| licence.contains(c)), "no creator in:\n{licence}");

    // Building the same set again is a no-op that leaves the files as they are.
    build_avatars(32, &first.0);
    assert_eq!(read_pngs(&first.0), pngs, "a second run into the same folder changed it");

    // A fresh, smaller run gives byte-identical images for the same indices.
    let second = TempDir::new("8");
    build_avatars(8, &second.0);
    let again = read_pngs(&second.0);
    assert_eq!(again.len(), 8);
    for (name, bytes) in &again {
        assert_eq!(Some(bytes), pngs.get(name), "{name} differs between runs");
    }
}
