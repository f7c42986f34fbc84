#!/usr/bin/env bash
# Launch-time benchmark: sbx against bubblewrap with equal isolation, side by side in
# one hyperfine run, as an unprivileged user. Prints each pair's ratio.
#
#   bench/compare.sh            # as root: runs as sbx-nosub (single id) and sbx-sub (newuidmap)
#   bench/compare.sh --quick    # fewer runs
#
# Isolation compared (both tools): user, mount, pid, ipc, uts, net, cgroup namespaces;
# /usr read-only with the merged-/usr links, /etc (and /opt) read-only, proc, dev,
# tmpfs /tmp, /run and $HOME; die with the parent; /bin/true: for sbx, the `minimal`
# profile plus `--tmpfs $HOME`, timed with its seccomp filter and Landlock off (equal
# isolation: bwrap has neither) and on (sbx as shipped). The `default` profile (which
# also binds the current directory and applies the secret masks) is timed alongside.
# Needs: hyperfine, bubblewrap, python3, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/root/.cargo/bin:$PATH"

runs=300
warmup=30
bind_runs=10
[ "${1:-}" = "--quick" ] && { runs=60; warmup=10; bind_runs=3; }

for tool in hyperfine bwrap python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install hyperfine bubblewrap python3)" >&2; exit 1; }
done

# sbx as installed per the README: a static build (no dynamic loader at each launch).
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet --target "$host"
work=$(mktemp -d /tmp/sbx-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp "target/$host/release/sbx" bench/interleave.py "$work/"
cc -O2 -static -o "$work/getppid" bench/getppid.c
cc -O2 -o "$work/cgroup_leaf" bench/cgroup_leaf.c
# The same sandbox without its hardening layers, to price them.
printf 'version = 1\ninclude = ["builtin:minimal"]\nseccomp = "off"\nlandlock = "off"\n' > "$work/bare.toml"
chmod 755 "$work/sbx" "$work/interleave.py" "$work/getppid" "$work/cgroup_leaf"
chmod 644 "$work/bare.toml"

cat > "$work/run.sh" <<'INNER'
#!/usr/bin/env bash
# Runs as the benchmark user. $1 = dir holding sbx, $2 = runs, $3 = warmup, $4 = runs with 1000 binds.
set -euo pipefail
bin=$1 runs=$2 warmup=$3 bind_runs=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
opt=()
[ -d /opt ] && opt=(--ro-bind /opt /opt)
bwrap=(bwrap --unshare-all --die-with-parent --ro-bind /usr /usr
  --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin --symlink usr/sbin /sbin
  --ro-bind /etc /etc "${opt[@]}" --proc /proc --dev /dev --tmpfs /tmp --tmpfs /run --tmpfs "$HOME")
ratio() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = r[-1]["median"]
for x in r:
    print(f"  {x['median']*1000:9.2f} ms median  ({x['median']/base:5.3f}x bwrap)  {x['command'][:60]}")
PY
}
echo "== /bin/true ($(id -un)): equal isolation (sbx's seccomp and Landlock off, as bwrap has none),"
echo "   sbx's own hardening on top, and the default profile; targets: single id <= 0.7x, newuidmap <= 1.0x"
hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$work/a.json" \
  "$bin/sbx -q --profile $bin/bare.toml --tmpfs $HOME -- /bin/true" \
  "$bin/sbx -q --profile minimal --tmpfs $HOME -- /bin/true" "$bin/sbx -q -- /bin/true" "${bwrap[*]} /bin/true" >/dev/null
ratio "$work/a.json"
echo "   interleaved, $runs rounds (robust to a busy machine):"
python3 "$bin/interleave.py" "$runs" "$bin/sbx -q --profile $bin/bare.toml --tmpfs $HOME -- /bin/true" \
  "$bin/sbx -q --profile minimal --tmpfs $HOME -- /bin/true" "${bwrap[*]} /bin/true"

echo "== hardening layers ($(id -un)): full (seccomp + Landlock + scopes) vs none; bwrap --new-session"
echo "   (target: full hardening <= 0.75x bwrap --unshare-all --die-with-parent --new-session)"
python3 "$bin/interleave.py" "$runs" \
  "$bin/sbx -q --profile minimal --tmpfs $HOME -- /bin/true" \
  "$bin/sbx -q --profile $bin/bare.toml --tmpfs $HOME -- /bin/true" \
  "${bwrap[*]} --new-session /bin/true"
echo "== in-sandbox syscall cost: 10^6 getppid, ns per call, median of 9 (target: overhead <= 3%)"
echo "   (the 1-instruction filter row is the fixed cost of any seccomp filter on this kernel)"
python3 - "$bin" "$HOME" "${bwrap[*]}" <<'PY'
import shlex, statistics, subprocess, sys
b, home, bwrap = sys.argv[1], sys.argv[2], shlex.split(sys.argv[3])
loop = [f"{b}/getppid", "1000000"]
cmds = {
    "sbx full hardening": [f"{b}/sbx", "-q", "--profile", "minimal", "--tmpfs", home, "--ro-bind", f"{b}/getppid", "--"] + loop,
    "sbx without layers": [f"{b}/sbx", "-q", "--profile", f"{b}/bare.toml", "--tmpfs", home, "--ro-bind", f"{b}/getppid", "--"] + loop,
    "bwrap": bwrap + ["--ro-bind", f"{b}/getppid", f"{b}/getppid"] + loop,
    "no sandbox": loop,
    "no sandbox, 1-instruction seccomp filter": loop + ["filter"],
}
res = {k: [] for k in cmds}
for _ in range(9):
    for k, c in cmds.items():
        res[k].append(float(subprocess.run(c, capture_output=True, text=True, check=True).stdout))
base = statistics.median(res["sbx without layers"])
for k, v in res.items():
    m = statistics.median(v)
    print(f"  {m:7.1f} ns/call  ({(m / base - 1) * 100:+5.1f}% vs sbx without layers)  {k}")
PY

if [ -x /usr/bin/pasta ]; then
  echo "== network modes ($(id -un)): ratio to bwrap (target: user adds <= 5 ms over none)"
  python3 "$bin/interleave.py" "$(( runs / 3 ))" \
    "$bin/sbx -q --profile minimal --tmpfs $HOME --net none -- /bin/true" \
    "$bin/sbx -q --profile minimal --tmpfs $HOME --net host -- /bin/true" \
    "$bin/sbx -q --profile minimal --tmpfs $HOME --net user -- /bin/true" \
    "${bwrap[*]} /bin/true"
fi

if [ -x /usr/bin/firefox-esr ] && [ -x /usr/bin/pasta ]; then
  echo "== firefox-esr --headless --screenshot under sbx --profile browser vs alone ($(id -un)) (target <= 1.05x)"
  mkdir -p "$work/ff" && cd "$work/ff"
  # Both start from an empty home (the sandbox's is a fresh tmpfs every time), both
  # behind the same sh. Interleaved: a 10-run hyperfine block swings 0.94-1.13x here.
  python3 "$bin/interleave.py" --vs alone 20 \
    "sh -c 'rm -rf $work/ff/home; exec $bin/sbx -q --profile browser -- firefox-esr --headless --screenshot /tmp/s.png about:blank'" \
    "sh -c 'rm -rf $work/ff/home; HOME=$work/ff/home exec firefox-esr --headless --screenshot $work/ff/s.png about:blank'"
  cd - >/dev/null
fi

echo "== limits ($(id -un)): the process ceiling every profile sets vs none; cgroup limits where delegated"
echo "   (targets: a launch without cgroup limits costs nothing more; with them at most +1 ms)"
python3 "$bin/interleave.py" "$runs" \
  "$bin/sbx -q --profile minimal --tmpfs $HOME -- /bin/true" \
  "$bin/sbx -q --profile minimal --tmpfs $HOME --limit nproc=unlimited -- /bin/true"
cg=$("$bin/sbx" --doctor --json | python3 -c 'import json,sys; c=[x for x in json.load(sys.stdin) if x["name"]=="cgroup limits"][0]; print(("ok " if c["ok"] else "no ")+c["detail"])')
if [ "${cg%% *}" = ok ]; then
  python3 "$bin/interleave.py" "$runs" \
    "$bin/sbx -q --profile minimal --tmpfs $HOME --memory 8G --cpus 2 --pids 4096 -- /bin/true" \
    "$bin/sbx -q --profile minimal --tmpfs $HOME -- /bin/true"
else
  echo "   cgroup limits: not measurable as $(id -un) here: ${cg#no }"
fi

echo "== dev in a git repository ($(id -un)): .git read-only vs staged for commit (--vcs commit,"
echo "   dev's mode: the top level and loose refs copied to a tmpfs, written back after checks)"
repo="$work/repo"
mkdir -p "$repo" && (cd "$repo" && git init -q && for i in $(seq 200); do echo "$i" > "f$i"; done &&
  git add -A && git -c user.name=b -c user.email=b@e commit -q -m bench)
(cd "$repo" && python3 "$bin/interleave.py" --vs read-only "$(( runs / 3 ))" \
  "$bin/sbx -q --profile dev --vcs commit -- /bin/true" \
  "$bin/sbx -q --profile dev --vcs read-only -- /bin/true")
echo "== a git commit in dev ($(id -un)): checked and taken by the host's git (--vcs commit) vs"
echo "   written in place (--vcs writable)"
commit="git -c user.name=b -c user.email=b@e commit -q --allow-empty -m x"
(cd "$repo" && python3 "$bin/interleave.py" --vs writable "$(( runs / 20 + 1 ))" \
  "$bin/sbx -q --profile dev --vcs commit -- $commit" \
  "$bin/sbx -q --profile dev --vcs writable -- $commit")

echo "== 1000 extra read-only binds ($(id -un))"
sbx_binds=() bwrap_binds=()
for i in $(seq 1000); do
  sbx_binds+=(--ro-bind "/usr/share/doc:/b/$i")
  bwrap_binds+=(--ro-bind /usr/share/doc "/b/$i")
done
hyperfine -N --warmup 1 --runs "$bind_runs" --export-json "$work/b.json" \
  "$bin/sbx -q --profile minimal --tmpfs $HOME ${sbx_binds[*]} -- /bin/true" "${bwrap[*]} ${bwrap_binds[*]} /bin/true" >/dev/null
ratio "$work/b.json"
INNER
chmod 755 "$work/run.sh"

if [ "$(id -u)" = 0 ]; then
  for u in sbx-nosub sbx-sub; do
    id "$u" >/dev/null 2>&1 || { echo "bench: run tests/setup.sh first (creates $u)" >&2; exit 1; }
    echo "### as $u ($(grep -q "^$u:" /etc/subuid && echo 'newuidmap path' || echo 'single-id map'))"
    (cd /tmp && setpriv --reuid="$u" --regid="$u" --init-groups \
      env -i HOME="/home/$u" USER="$u" PATH=/usr/bin:/bin "$work/run.sh" "$work" "$runs" "$warmup" "$bind_runs")
  done
  # Where no launch can take cgroup limits (a hybrid host), the leaf's own cost on
  # the real cgroup v2 hierarchy: made, entered by clone3, removed (bench/cgroup_leaf.c).
  v2=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit } break } }' /proc/self/mountinfo)
  if [ -n "$v2" ] && mkdir "$v2/sbx-bench-$$" 2>/dev/null; then
    echo "### cgroup leaf on $v2 (root), 2000 rounds"
    "$work/cgroup_leaf" "$v2/sbx-bench-$$" 2000 || true
    rmdir "$v2/sbx-bench-$$"
  fi
else
  "$work/run.sh" "$work" "$runs" "$warmup" "$bind_runs"
fi
