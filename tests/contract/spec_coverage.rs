//! Guards the contract suite itself: every operation a spec declares is
//! exercised by that provider's contract test file, so adding an operation to
//! a spec without a test fails CI.

use songbind_contract_tests::Spec;

/// Operations the generator leaves out (`x-songbind-skip` in the spec): the
/// contract test proves their generated form type instead of a client call.
const NOT_GENERATED: &[(&str, &str, &str)] = &[
    ("musicgpt", "remix", "RemixForm"),
    ("elevenlabs", "compose_detailed", "DetailedMusicResponse"),
];

#[test]
fn every_spec_operation_has_a_contract_test() {
    let mut missing = Vec::new();
    for provider in ["soundverse", "soundpiece", "musicgpt", "elevenlabs"] {
        let spec = Spec::load(provider).expect("spec loads");
        let tests = std::fs::read_to_string(format!(
            "{}/contract/{provider}.rs",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("contract test file exists");
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
