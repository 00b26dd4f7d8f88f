//! Embeds every preset record (`presets/*.toml`): adding a provider is adding a file.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("crates/verify/presets exists")
        .filter_map(|entry| {
            let path = entry.expect("a readable directory entry").path();
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".toml")?
                .to_owned();
            Some(name)
        })
        .collect();
    names.sort();
    let mut out = String::from("/// Every preset record, by file name, sorted.\npub(crate) static RECORDS: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = dir.join(format!("{name}.toml"));
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("presets.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
