//! Guards the contract suite itself: every operation of every spec
//! (`specs/*.yaml`, read from the directory) is exercised by that provider's
//! contract test file (`contract/<name>.rs`), so adding a spec or an operation
//! without a test fails CI, and a new provider needs no edit here.

use std::path::PathBuf;

use songbind_contract_tests::Spec;

/// Operations the generator leaves out (`x-songbind-skip` in the spec): the
/// contract test proves their generated form type instead of a client call.
const NOT_GENERATED: &[(&str, &str, &str)] = &[
    ("musicgpt", "remix", "RemixForm"),
    ("elevenlabs", "compose_detailed", "DetailedMusicResponse"),
];

/// The name of every `specs/*.yaml`, in name order.
fn spec_names() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or_else(|| panic!("{}: not a UTF-8 file name", path.display()))
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_spec_is_found() {
    let names = spec_names();
    // The providers that were here before the list was read from the
    // directory: a broken read (wrong directory, wrong extension) fails here
    // rather than checking nothing.
    for provider in ["elevenlabs", "musicgpt", "soundpiece", "soundverse"] {
        assert!(
            names.iter().any(|name| name == provider),
            "specs/{provider}.yaml not found among {names:?}"
        );
    }
    for (provider, id, _) in NOT_GENERATED {
        assert!(
            names.iter().any(|name| name == provider),
            "NOT_GENERATED names {provider}, which has no spec"
        );
        let spec = Spec::load(provider).expect("spec loads");
        assert!(
            spec.operations().iter().any(|(_, _, op)| op == id),
            "NOT_GENERATED names {provider}'s `{id}`, which its spec does not declare"
        );
    }
}

#[test]
fn every_spec_operation_has_a_contract_test() {
    let mut missing = Vec::new();
    for provider in spec_names() {
        let provider = provider.as_str();
        let spec = Spec::load(provider).unwrap_or_else(|e| panic!("{e:#}"));
        let path = format!("{}/contract/{provider}.rs", env!("CARGO_MANIFEST_DIR"));
        let Ok(tests) = std::fs::read_to_string(&path) else {
            missing.push(format!("{provider}: no contract test file {path}"));
            continue;
        };
        let operations = spec.operations();
        assert!(!operations.is_empty(), "{provider}: spec has no operations");
        for (method, path, id) in operations {
            let exercised = match NOT_GENERATED
                .iter()
                .find(|(p, op, _)| *p == provider && *op == id)
            {
                Some((_, _, form_type)) => tests.contains(&format!("types::{form_type}")),
                None => tests.contains(&format!(".{id}()")),
            };
            if !exercised {
                missing.push(format!("{provider}: {method} {path} ({id})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without a contract test:\n{}",
        missing.join("\n")
    );
}
