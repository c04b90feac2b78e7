#!/usr/bin/env bash
# Build cost of a provider crate against a floor (see BENCHMARKS.md).
#
# Times a clean debug build of `songbind-soundpiece` (generated client,
# progenitor-client, chrono, regress, uuid, songbind-transport) against a
# scratch crate that depends only on reqwest + serde + serde_json with the
# features the provider build resolves for them (reqwest: json, query,
# stream, charset, http2, system-proxy, rustls; serde: derive). Each build
# starts from nothing in its own fresh CARGO_TARGET_DIR, with the
# workspace's dev profile, the versions pinned in Cargo.lock, offline (the
# crates must already be in ~/.cargo/registry: any earlier workspace build
# puts them there). Builds alternate floor, provider, provider, floor, ... so
# that load from elsewhere hits both alike; the ratios are of the medians.
# Two figures: wall clock, and CPU time (user + system of cargo and every
# process it waited for: rustc, build scripts, the C compiler), which load
# from other processes on a shared machine disturbs far less.
#
#   scripts/build-cost.sh            # 3 builds of each (about 20 minutes on 2 cores)
#   RUNS=2 scripts/build-cost.sh
#
# Slow and machine-bound: not part of CI. Needs python3 only for the
# per-crate breakdown at the end (read from cargo's --timings report).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${RUNS:-3}"
work="$(mktemp -d -t songbind-build-cost.XXXXXX)"
trap 'rm -rf "$work"' EXIT
keep="${BUILD_COST_KEEP:-}" # a directory to keep cargo's --timings reports in

# The provider: a copy of its two crates in a workspace of their own, with
# the main workspace's manifest (dependencies, profiles) and lock file, so
# that concurrent edits elsewhere in the tree cannot touch the measurement.
provider="$work/provider"
mkdir -p "$provider/crates"
cp -r "$root/crates/songbind-transport" "$root/crates/songbind-soundpiece" "$provider/crates/"
cp "$root/Cargo.lock" "$provider/Cargo.lock"
awk '
    /^members = \[/ { print "members = [\"crates/songbind-transport\", \"crates/songbind-soundpiece\"]"; skipping = 1; next }
    skipping && /^\]/ { skipping = 0; next }
    !skipping { print }
' "$root/Cargo.toml" >"$provider/Cargo.toml"

# The floor: reqwest + serde + serde_json only, same features and profile.
floor="$work/floor"
mkdir -p "$floor/src"
cp "$root/Cargo.lock" "$floor/Cargo.lock"
cat >"$floor/Cargo.toml" <<'TOML'
[package]
name = "build-cost-floor"
version = "0.1.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
reqwest = { version = "0.13.5", default-features = false, features = ["json", "query", "stream", "charset", "http2", "system-proxy", "rustls"] }
serde = { version = "1.0.228", features = ["derive"] }
serde_json = "1.0.145"

[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false
TOML
cat >"$floor/src/lib.rs" <<'RS'
//! Uses each dependency once, as a client crate would.
#[derive(serde::Deserialize)]
pub struct Answer {
    pub id: String,
}

pub async fn get(client: &reqwest::Client, url: &str) -> Result<Answer, reqwest::Error> {
    client.get(url).query(&[("wait", "false")]).send().await?.json().await
}

pub fn parse(text: &str) -> serde_json::Result<serde_json::Value> {
    serde_json::from_str(text)
}
RS

build() { # kind run -> "wall cpu" seconds
    local kind="$1" run="$2" dir package
    case "$kind" in
        floor) dir="$floor"; package="build-cost-floor" ;;
        provider) dir="$provider"; package="songbind-soundpiece" ;;
    esac
    local target="$work/target-$kind-$run"
    local TIMEFORMAT='%R %U %S' # wall, user and system seconds of cargo and every process it waited for
    { time (cd "$dir" && CARGO_TARGET_DIR="$target" cargo build --offline --quiet -p "$package" --timings >/dev/null 2>"$work/log-$kind-$run"); } 2>"$work/time-$kind-$run" || {
        cat "$work/log-$kind-$run" "$work/time-$kind-$run" >&2
        exit 1
    }
    cp "$target"/cargo-timings/cargo-timing.html "$work/timing-$kind-$run.html" 2>/dev/null || true
    if [[ -n "$keep" ]]; then
        mkdir -p "$keep" && cp "$work/timing-$kind-$run.html" "$keep/" 2>/dev/null || true
    fi
    rm -rf "$target"
    awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$work/time-$kind-$run"
}

echo "build cost: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(cargo --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$floor" && cargo tree --offline -e normal --depth 1 2>/dev/null | sed 's/^/    floor: /') || true
floor_wall=() floor_cpu=() provider_wall=() provider_cpu=()
for ((run = 0; run < runs; run++)); do
    if ((run % 2 == 0)); then order="floor provider"; else order="provider floor"; fi
    for kind in $order; do
        result="$(build "$kind" "$run")"
        read -r wall cpu <<<"$result"
        printf '  run %d %-8s wall %7.1f s  cpu %7.1f s  (load %s)\n' "$run" "$kind" "$wall" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)"
        if [[ "$kind" == floor ]]; then
            floor_wall+=("$wall"); floor_cpu+=("$cpu")
        else
            provider_wall+=("$wall"); provider_cpu+=("$cpu")
        fi
    done
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
verdict() { awk -v r="$1" 'BEGIN { print (r <= 1.1) ? "MET" : "MISSED" }'; }
ratio() { awk -v p="$1" -v f="$2" 'BEGIN { printf "%.3f\n", p / f }'; }
fw="$(median "${floor_wall[@]}")" fc="$(median "${floor_cpu[@]}")"
pw="$(median "${provider_wall[@]}")" pc="$(median "${provider_cpu[@]}")"
cpu_ratio="$(ratio "$pc" "$fc")" wall_ratio="$(ratio "$pw" "$fw")"
printf 'medians: floor (reqwest + serde + serde_json) cpu %.1f s, wall %.1f s; songbind-soundpiece cpu %.1f s, wall %.1f s\n' "$fc" "$fw" "$pc" "$pw"
printf 'build cost songbind-soundpiece/floor, wall clock: %sx (target <= 1.1x): %s\n' "$wall_ratio" "$(verdict "$wall_ratio")"
printf 'build cost songbind-soundpiece/floor, cpu time (user+sys): %sx (target <= 1.1x): %s\n' "$cpu_ratio" "$(verdict "$cpu_ratio")"

# Where the difference goes: units built only for the provider, and the
# slowest units of each build, from cargo's --timings report.
if command -v python3 >/dev/null; then
    python3 - "$work" <<'PY'
import glob, json, os, re, sys

def units(path):
    text = open(path, encoding="utf-8").read()
    match = re.search(r"const UNIT_DATA = (\[.*?\]);\n", text, re.S)
    out = {}
    for unit in json.loads(match.group(1)) if match else []:
        key = f"{unit['name']} {unit.get('target', '').strip()}".strip()
        out[key] = out.get(key, 0.0) + float(unit.get("duration", 0.0))
    return out

def fastest(kind):
    """Each unit's shortest time over the runs: the least disturbed by load."""
    best = {}
    for path in glob.glob(os.path.join(sys.argv[1], f"timing-{kind}-*.html")):
        for name, secs in units(path).items():
            best[name] = min(secs, best.get(name, secs))
    return best

floor, provider = fastest("floor"), fastest("provider")
if not floor or not provider:
    sys.exit("(no --timings report to break the builds down)")
only = {k: v for k, v in provider.items() if k not in floor}
print(f"units only in the provider build: {len(only)}, {sum(only.values()):.1f} s of unit time "
      "(each unit's fastest run; units overlap on the 2 cores)")
for name, secs in sorted(only.items(), key=lambda kv: -kv[1])[:15]:
    print(f"    {secs:6.1f} s  {name}")
print(f"summed unit time: floor {sum(floor.values()):.1f} s, provider {sum(provider.values()):.1f} s")
for label, data in (("floor", floor), ("provider", provider)):
    top = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(data.items(), key=lambda kv: -kv[1])[:6])
    print(f"slowest {label} units: {top}")
PY
fi
