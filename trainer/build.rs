//! With feature `tch`: writes libtorch's library folder (torch-sys's `links = "tch"` metadata)
//! into the trainer's rpath, so `--device libtorch` starts without `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(libtorch_lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Binaries, tests and examples all link libtorch when the feature is on.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch_lib}");
    }
}
