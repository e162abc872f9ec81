//! Running the real trainer binary on real files, for the CLI tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the trainer binary with `args`, echoing what it printed.
pub fn trainer(args: &[&str]) -> Output {
    let output =
        Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().expect("run trainer");
    println!(
        "$ trainer {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the trainer, asserts that it succeeded and returns what it printed.
pub fn succeed(args: &[&str]) -> String {
    let output = trainer(args);
    assert!(output.status.success(), "trainer {} failed", args.join(" "));
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

/// 64 PNG files of 16x16 discs in a fresh folder.
pub fn image_folder(root: &Path) -> PathBuf {
    let folder = root.join("images");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..64u32 {
        let picture = image::RgbImage::from_fn(16, 16, |x, y| {
            let (cx, cy) = ((3 + i * 5 % 10) as i32, (3 + i * 7 % 10) as i32);
            let inside = (x as i32 - cx).pow(2) + (y as i32 - cy).pow(2) < 16;
            if inside {
                image::Rgb([(i * 40 % 256) as u8, 40, 200])
            } else {
                image::Rgb([230, 220, 180])
            }
        });
        picture.save(folder.join(format!("disc-{i:02}.png"))).unwrap();
    }
    folder
}
