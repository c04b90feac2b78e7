//! The workspace README's headline example is the crate README's, which
//! runs as a doctest (`ReadmeDoctests`): the two cannot drift apart.

fn rust_blocks(text: &str) -> Vec<String> {
    text.split("```rust")
        .skip(1)
        .filter_map(|rest| rest.split_once('\n').map(|(_, body)| body))
        .filter_map(|body| body.split_once("```").map(|(code, _)| code.to_owned()))
        .collect()
}

#[test]
fn the_workspace_readme_shows_the_doctested_example() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let crate_readme = std::fs::read_to_string(format!("{dir}/README.md")).unwrap();
    let root_readme = std::fs::read_to_string(format!("{dir}/../../README.md")).unwrap();
    let headline = rust_blocks(&crate_readme)
        .into_iter()
        .next()
        .expect("the crate README has an example");
    assert!(
        rust_blocks(&root_readme).contains(&headline),
        "README.md's example differs from crates/songbind/README.md's"
    );
    // Only songbind and tokio: the example names no other crate.
    for line in headline
        .lines()
        .filter(|l| l.trim_start().starts_with("use "))
    {
        assert!(line.contains("songbind::"), "{line}");
    }
}
