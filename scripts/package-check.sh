#!/usr/bin/env bash
# Packaging check (CI): every publishable crate packs on its own, with the
# metadata crates.io and docs.rs want and the files it needs.
#
#   scripts/package-check.sh        # 5 to 15 seconds; compiles nothing
#
# 1. Which crates: every workspace member whose [package] does not say
#    `publish = false` (songbind-chaos, xtask, tests and benches do; fuzz/ is
#    not a member).
# 2. `cargo package --no-verify --offline --locked --allow-dirty -p A -p B ...`
#    packs them all in one go. Packaging several crates at once resolves
#    their path dependencies on one another through a local overlay
#    registry (target/package/tmp-registry), so this works offline before
#    any of them is on crates.io; `cargo package --workspace` would also
#    try the `publish = false` members and fail on their versionless path
#    dependencies, and `-p <one>` alone would look its siblings up on
#    crates.io. Packaging also refuses a path dependency without a version
#    and writes each crate's own Cargo.lock, resolved offline.
# 3. Metadata, read from each .crate's normalized Cargo.toml (what crates.io
#    sees, workspace keys filled in): description, license, repository,
#    readme (and the file packed), 1 to 5 keywords of crates.io's form,
#    1 to 5 categories from crates.io's list of slugs (copied below),
#    [package.metadata.docs.rs] with all-features = true and
#    rustdoc-args = ["--cfg", "docsrs"].
# 4. Badges: a src/lib.rs with a feature-gated `pub mod` / `pub use` also
#    has `#[cfg_attr(docsrs, doc(cfg(feature = ...)))]` on it and
#    `#![cfg_attr(docsrs, feature(doc_cfg))]`.
# 5. Files, listed from each .crate: Cargo.toml, Cargo.lock, the README,
#    every .rs file under src/ (so src/lib.rs or src/main.rs and, for the
#    generated crates, src/generated.rs and src/generated_httpmock.rs), and
#    the source of every lib and bin target.
# 6. References: every literal path in include_str!/include_bytes!/include!
#    and #[path = "..."] of a packed file (`#![doc = include_str!("../README.md")]`
#    included) must resolve inside the crate and be packed. An error for
#    src/ and build.rs (the crate would not build from crates.io); a warning
#    for tests/, examples/ and benches/ (only `cargo test` from the .crate
#    would fail), as is a test that reads `CARGO_MANIFEST_DIR/../..`.
# 7. Installable on its own (songbind-cli, songbind-emulator and songbind):
#    each packs a Cargo.lock (what `cargo install --locked` uses), the
#    normalized manifest has no `path` left in a dependency table, and
#    every crate in its normal and build dependency tree (`cargo tree -e
#    normal,build --target all`) is either from crates.io or a publishable
#    workspace member packed in step 2: none is `publish = false`, none is a
#    git dependency.
#
# Why not `cargo install --path crates/<x> --offline --locked --debug`: it
# compiles the whole tree (reqwest, rustls with aws-lc-sys's C build, axum,
# clap, ...) with the crate's own feature set, which CI's other steps do
# not share. Measured on 2 shared cores, a cold `cargo install --path
# crates/songbind-cli --offline --locked --debug` (193 crates, and it holds
# the other two) took 8m52s wall, 3m37s CPU: at best ~2 minutes on two idle
# cores, then the emulator on top, far over this step's 1-minute budget.
# The checks above take about 5 seconds and catch what makes such an
# install fail before anything compiles: a dependency that is not published
# or not versioned, a file left out of the package, a path outside the crate.
# `songbind` is a library: `cargo install` does not apply; "on its own" means
# it packs, resolves and passes the dependency checks alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

# Binary crates (and the library) that must install / build on their own.
standalone=(songbind-cli songbind-emulator songbind)

# crates.io category slugs (https://crates.io/category_slugs). A slug missing
# here but listed there may be added.
categories_known=" accessibility aerospace aerospace::drones aerospace::protocols
aerospace::simulation aerospace::space-protocols aerospace::unmanned-aerial-vehicles
algorithms api-bindings asynchronous authentication caching command-line-interface
command-line-utilities compilers compression computer-vision concurrency config
cryptography cryptography::cryptocurrencies data-structures database
database-implementations date-and-time development-tools development-tools::build-utils
development-tools::cargo-plugins development-tools::debugging development-tools::ffi
development-tools::procedural-macro-helpers development-tools::profiling
development-tools::testing email embedded emulators encoding external-ffi-bindings
filesystem finance game-development game-engines games graphics gui hardware-support
internationalization localization mathematics memory-management multimedia
multimedia::audio multimedia::encoding multimedia::images multimedia::video
network-programming no-std no-std::no-alloc os os::android-apis os::freebsd-apis
os::linux-apis os::macos-apis os::unix-apis os::windows-apis parser-implementations
parsing rendering rendering::data-formats rendering::engine rendering::graphics-api
rust-patterns science science::bioinformatics science::geo science::neuroscience
science::robotics simulation template-engine text-editors text-processing
value-formatting virtualization visualization wasm web-programming
web-programming::http-client web-programming::http-server web-programming::websocket "
categories_known=" $(printf '%s' "$categories_known" | tr '\n' ' ') "

errors=0
warnings=0
fail() { printf 'error: %s\n' "$*" >&2; errors=$((errors + 1)); }
warn() { printf 'warning: %s\n' "$*" >&2; warnings=$((warnings + 1)); }

# `section|key|value` for every key of a TOML file, arrays folded onto one
# line. Enough for cargo's normalized manifests and our own Cargo.toml files.
toml_flat() {
    awk '
        /^[ \t]*#/ || /^[ \t]*$/ { if (!acc) next }
        acc { val = val " " $0; if ($0 ~ /^[ \t]*\][ \t]*$/ || $0 ~ /\][ \t]*$/) { print sec "|" key "|" val; acc = 0 } ; next }
        /^\[/ { sec = $0; gsub(/^\[+|\]+[ \t]*$/, "", sec); next }
        /^[A-Za-z0-9_."-]+[ \t]*=/ {
            key = $0; sub(/[ \t]*=.*/, "", key)
            val = $0; sub(/^[^=]*=[ \t]*/, "", val)
            if (val ~ /^\[/ && val !~ /\][ \t]*$/) { acc = 1; next }
            print sec "|" key "|" val
        }
    ' "$1"
}
toml_get() { # file section key
    toml_flat "$1" | awk -F'|' -v s="$2" -v k="$3" '!found && $1 == s && $2 == k { sub(/^[^|]*\|[^|]*\|/, ""); print; found = 1 }'
}
# The strings of a TOML array value, one a line.
toml_strings() { printf '%s\n' "$1" | grep -o '"[^"]*"' | tr -d '"' || true; }

# Normalizes a relative path (a/b/../c -> a/c); a leading ../ stays.
normalize() {
    local IFS=/ part out=()
    for part in $1; do
        case "$part" in
            '' | .) ;;
            ..) if ((${#out[@]})) && [[ "${out[-1]}" != .. ]]; then unset 'out[-1]'; else out+=(..); fi ;;
            *) out+=("$part") ;;
        esac
    done
    printf '%s' "${out[*]}"
}

# 1. Publishable members.
mapfile -t manifests < <(cargo metadata --no-deps --format-version 1 --offline --locked |
    grep -o '"manifest_path":"[^"]*"' | sed 's/^"manifest_path":"//; s/"$//')
names=() dirs=() unpublished=()
for manifest in "${manifests[@]}"; do
    name=$(toml_get "$manifest" package name | tr -d '"')
    publish=$(toml_get "$manifest" package publish)
    if [[ "$publish" == false || "$publish" == "[]" ]]; then
        unpublished+=("$name")
        continue
    fi
    names+=("$name")
    dirs+=("$(dirname "$manifest")")
done
((${#names[@]})) || { fail "no publishable crate found"; exit 1; }
printf 'publishable: %s\nnot published: %s\n' "${names[*]}" "${unpublished[*]}"

# 2. Pack them all.
pkg_args=()
for name in "${names[@]}"; do pkg_args+=(-p "$name"); done
target_dir=$(cargo metadata --no-deps --format-version 1 --offline --locked |
    grep -o '"target_directory":"[^"]*"' | sed 's/^"target_directory":"//; s/"$//')
rm -f "$target_dir"/package/*.crate
# Packaging resolves each crate's own Cargo.lock offline, for every target
# platform: the registry cache must hold the crates of every platform
# (android_system_properties, winapi, ...), which a build here never
# downloads. `cargo fetch` (all platforms) fills it from the registry.
cargo fetch --locked --quiet
if ! cargo package --no-verify --offline --locked --allow-dirty --quiet "${pkg_args[@]}"; then
    fail "cargo package failed for: ${names[*]}"
    exit 1
fi

work=$(mktemp -d -t songbind-package-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

for i in "${!names[@]}"; do
    name=${names[$i]}
    errors_before=$errors
    dir=${dirs[$i]}
    rel=${dir#"$root"/}
    version=$(toml_get "$dir/Cargo.toml" package version | tr -d '"')
    [[ "$version" == "" || "$version" == true ]] &&
        version=$(toml_get "$root/Cargo.toml" workspace.package version | tr -d '"')
    crate="$target_dir/package/$name-$version.crate"
    [[ -f "$crate" ]] || { fail "$name: $crate was not written"; continue; }
    mkdir -p "$work/$name"
    tar -xzf "$crate" -C "$work/$name"
    unpacked="$work/$name/$name-$version"
    files=$(cd "$unpacked" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
    has() { grep -qxF -- "$1" <<<"$files"; }
    manifest="$unpacked/Cargo.toml"

    # 3. Metadata.
    for key in description license repository readme; do
        [[ -n "$(toml_get "$manifest" package "$key")" ]] || fail "$name: [package] has no \`$key\`"
    done
    readme=$(toml_get "$manifest" package readme | tr -d '"')
    if [[ -n "$readme" && "$readme" != false ]]; then
        has "$readme" || fail "$name: its readme $readme is not packed"
    fi
    keywords=$(toml_strings "$(toml_get "$manifest" package keywords)")
    count=$(printf '%s' "$keywords" | grep -c . || true)
    ((count >= 1 && count <= 5)) || fail "$name: $count keywords (crates.io takes 1 to 5)"
    for keyword in $keywords; do
        [[ ${#keyword} -le 20 && "$keyword" =~ ^[A-Za-z0-9][A-Za-z0-9_+-]*$ ]] ||
            fail "$name: keyword \"$keyword\" (crates.io: ASCII letters, digits, _ - +, at most 20)"
    done
    categories=$(toml_strings "$(toml_get "$manifest" package categories)")
    count=$(printf '%s' "$categories" | grep -c . || true)
    ((count >= 1 && count <= 5)) || fail "$name: $count categories (crates.io takes 1 to 5)"
    for category in $categories; do
        [[ "$categories_known" == *" $category "* ]] ||
            fail "$name: category \"$category\" is not a crates.io slug (https://crates.io/category_slugs)"
    done
    [[ "$(toml_get "$manifest" package.metadata.docs.rs all-features)" == true ]] ||
        fail "$name: [package.metadata.docs.rs] lacks all-features = true"
    [[ "$(toml_get "$manifest" package.metadata.docs.rs rustdoc-args | tr -d ' ')" == *'"--cfg","docsrs"'* ]] ||
        fail "$name: [package.metadata.docs.rs] lacks rustdoc-args = [\"--cfg\", \"docsrs\"]"

    # 4. docs.rs feature badges on feature-gated public items of lib.rs.
    if [[ -f "$dir/src/lib.rs" ]]; then
        missing=$(awk '
            /^#\[cfg\(.*feature *= *"/ { gated = FNR; badge = 0; next }
            gated && /^#\[cfg_attr\(docsrs, *doc\(cfg\(/ { badge = 1; next }
            gated && /^#\[/ { next }
            gated && /^pub (mod|use) / { if (!badge) print FNR ": " $0 }
            { gated = 0 }
        ' "$dir/src/lib.rs")
        [[ -z "$missing" ]] ||
            fail "$name: feature-gated items without #[cfg_attr(docsrs, doc(cfg(...)))] in $rel/src/lib.rs:"$'\n'"$missing"
        if grep -q 'cfg_attr(docsrs, *doc(cfg(' "$dir/src/lib.rs"; then
            grep -q '^#!\[cfg_attr(docsrs, *feature(doc_cfg))\]' "$dir/src/lib.rs" ||
                fail "$name: $rel/src/lib.rs has doc(cfg) badges but no #![cfg_attr(docsrs, feature(doc_cfg))]"
        fi
    fi

    # 5. Files.
    for file in Cargo.toml Cargo.lock; do
        has "$file" || fail "$name: $file is not packed"
    done
    [[ -f "$dir/src/lib.rs" || -f "$dir/src/main.rs" ]] ||
        grep -q '^bin|' <(toml_flat "$manifest") || fail "$name: no src/lib.rs, src/main.rs or [[bin]]"
    while IFS= read -r source; do
        has "$source" || fail "$name: $rel/$source is not packed"
    done < <(cd "$dir" && find src -type f -name '*.rs' | LC_ALL=C sort)
    while IFS= read -r source; do
        has "$source" || fail "$name: target source $source is not packed"
    done < <(toml_flat "$manifest" | awk -F'|' '($1 == "lib" || $1 == "bin") && $2 == "path" { gsub(/"/, "", $3); print $3 }')
    # (A generated crate's src/generated.rs is among them; if it is gone
    # from the crate itself, say so.)
    if grep -q '^mod generated;' "$dir/src/lib.rs" 2>/dev/null && [[ ! -f "$dir/src/generated.rs" ]]; then
        fail "$name: $rel/src/generated.rs is missing (cargo xtask generate)"
    fi

    # 6. What packed files pull in at compile time stays inside the crate.
    runtime_reads=()
    while IFS= read -r source; do
        [[ "$source" == *.rs ]] || continue
        base=$(dirname "$source")
        while IFS= read -r hit; do
            line=${hit%%:*}
            path=$(printf '%s' "${hit#*:}" | sed -E 's/.*(include_str!|include_bytes!|include!|#\[path *=) *\(? *"([^"]*)".*/\2/')
            [[ "$path" == /* ]] && { fail "$name: $source:$line: absolute path \"$path\""; continue; }
            resolved=$(normalize "$base/$path")
            if [[ "$resolved" == ..* ]]; then
                message="$name: $source:$line: \"$path\" is outside the crate"
            elif ! has "$resolved"; then
                message="$name: $source:$line: \"$path\" ($resolved) is not packed"
            else
                continue
            fi
            case "$source" in
                src/* | build.rs) fail "$message" ;;
                *) warn "$message (cargo test from the .crate would not build)" ;;
            esac
        done < <(grep -nE '(include_str!|include_bytes!|include!) *\( *"|#\[path *= *"' "$unpacked/$source" || true)
        case "$source" in
            src/* | build.rs) ;;
            *)
                if grep 'CARGO_MANIFEST_DIR' "$unpacked/$source" | grep -q '\.\./\.\.'; then
                    runtime_reads+=("$source")
                fi
                ;;
        esac
    done <<<"$files"
    ((${#runtime_reads[@]} == 0)) ||
        warn "$name: ${runtime_reads[*]} read CARGO_MANIFEST_DIR/../.. at run time (cargo test from the .crate would fail)"

    # 7. Installable / buildable on its own.
    if [[ " ${standalone[*]} " == *" $name "* ]]; then
        # A dependency table that still names a path would not resolve from crates.io.
        leftover=$(toml_flat "$manifest" | awk -F'|' '$1 ~ /(^|\.)(dev-|build-)?dependencies(\.|$)/ && ($2 == "path" || $3 ~ /path *=/)')
        [[ -z "$leftover" ]] || fail "$name: the packed Cargo.toml keeps a path dependency: $leftover"
        tree=$(cargo tree -p "$name" -e normal,build --target all --prefix none --format '{p}' --offline --locked)
        while IFS= read -r local_dep; do
            dep=${local_dep%% *}
            [[ " ${names[*]} " == *" $dep "* ]] ||
                fail "$name: depends on workspace crate $dep, which is not published"
        done < <(printf '%s\n' "$tree" | grep -E ' \((/|[A-Za-z]:\\)' | sort -u)
        if grep -qE ' \((git\+|https?://|ssh://)' <<<"$tree"; then
            fail "$name: depends on a git repository: $(printf '%s\n' "$tree" | grep -E ' \((git\+|https?://|ssh://)' | sort -u | tr '\n' ' ')"
        fi
    fi
    ((errors > errors_before)) ||
        printf 'ok: %-22s %3d files packed\n' "$name" "$(grep -c . <<<"$files")"
done

if ((errors)); then
    printf '\npackage check: %d error(s), %d warning(s)\n' "$errors" "$warnings" >&2
    exit 1
fi
printf '\npackage check: %d crates ok, %d warning(s)\n' "${#names[@]}" "$warnings"
