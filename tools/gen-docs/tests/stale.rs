//! The committed man pages and completions are what the clap definitions
//! give today: regenerate into a temporary directory and compare, file by
//! file, and no committed page or completion is left over from a gone verb.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn committed_docs_are_fresh() {
    let tmp = std::env::temp_dir().join(format!("carte-gen-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = carte_gen_docs::write_all(&tmp).expect("generate");
    let mut stale = Vec::new();
    for rel in &written {
        let fresh = std::fs::read(tmp.join(rel)).unwrap();
        if std::fs::read(repo().join(rel)).ok().as_deref() != Some(&fresh[..]) {
            stale.push(rel.display().to_string());
        }
    }
    for dir in ["man", "completions"] {
        let extra: Vec<_> = listing(&repo().join(dir))
            .difference(&listing(&tmp.join(dir)))
            .map(|f| format!("{dir}/{f} (not generated)"))
            .collect();
        stale.extend(extra);
    }
    std::fs::remove_dir_all(&tmp).unwrap();
    assert!(
        stale.is_empty(),
        "stale, run `cargo run -p carte-gen-docs`: {stale:?}"
    );
}
