#!/usr/bin/env python3
"""The benchmark behind conformance/bench.sh (run that, not this).

carte, crun and runc side by side, in rotated order over several rounds of
hyperfine; writes docs/performance.md and docs/performance.svg from the run.
Standard library only."""
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

REPO, WORK = sys.argv[1], sys.argv[2]
QUICK = os.environ.get("BENCH_QUICK") == "1"
# Many samples: this 2-core VM's timings swing by milliseconds.
ROUNDS = 2 if QUICK else 10
RUNS_PER_ROUND = 5 if QUICK else 20
# A backtrace setting makes error paths capture backtraces; no runtime
# should pay for the benchmark's environment.
for var in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE"):
    os.environ.pop(var, None)
RUNTIMES = {
    "carte": os.path.join(REPO, "target/x86_64-unknown-linux-gnu/release/carte"),
    "crun": shutil.which("crun"),
    "runc": shutil.which("runc"),
}
NAMES = list(RUNTIMES)
# (scenario, target ratio of carte's median to crun's), from the issue.
TARGETS = {
    "run /bin/true": 0.6,
    "create, start, wait, delete": 0.7,
    "state of a created container": 0.5,
    "exec /bin/true": 0.7,
}


def sh(cmd, check=True):
    """Runs a shell command; output goes through files, never pipes: a
    container started by the command inherits them and would hold a pipe
    open (and us waiting) for as long as it lives."""
    with open(os.path.join(WORK, "out"), "w+") as out, open(os.path.join(WORK, "err"), "w+") as err:
        done = subprocess.run(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(cmd, done.returncode, out.read(), err.read())
    if check and result.returncode != 0:
        raise RuntimeError(f"{cmd}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def root(rt):
    return os.path.join(WORK, "root-" + rt)


def cli(rt):
    return f"{RUNTIMES[rt]} --root {root(rt)}"


def make_bundle(name, args, memory_limit=None):
    path = os.path.join(WORK, name)
    sh(f"{REPO}/bundle-examples/make-bundle.sh hello {path}")
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["ociVersion"] = "1.0.2"  # crun 1.8 knows no newer version
    config["process"]["args"] = args
    if memory_limit is not None:
        config["linux"]["resources"]["memory"] = {"limit": memory_limit}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    return path


# scenario -> carte/crun of each round's medians: how much the ratio moves
# from one round to the next on this machine.
ROUND_RATIOS = {}


def hyperfine(scenario, commands, shell=False):
    """commands: runtime -> command line. Rounds rotate the order."""
    times = {rt: [] for rt in commands}
    names = list(commands)
    ratios = []
    for r in range(ROUNDS):
        order = names[r % len(names):] + names[: r % len(names)]
        out = os.path.join(WORK, "hf.json")
        args = ["hyperfine", "--warmup", "2", "--runs", str(RUNS_PER_ROUND), "--export-json", out, "--style", "none"]
        if not shell:
            args.append("-N")
        args += [commands[rt] for rt in order]
        subprocess.run(args, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            medians = {}
            for rt, result in zip(order, json.load(f)["results"]):
                times[rt] += result["times"]
                medians[rt] = statistics.median(result["times"])
            if "carte" in medians and "crun" in medians:
                ratios.append(medians["carte"] / medians["crun"])
    if ratios:
        ROUND_RATIOS[scenario] = ratios
    print(f"  {scenario}: " + ", ".join(f"{rt} {statistics.median(t) * 1000:.2f} ms" for rt, t in times.items()), flush=True)
    return {rt: (statistics.mean(t), statistics.median(t)) for rt, t in times.items()}


def timed(cmd):
    start = time.monotonic()
    sh(cmd, check=False)
    return time.monotonic() - start


def main():
    hello = make_bundle("true", ["/bin/true"])
    sleeper = make_bundle("sleep", ["sleep", "1000"])
    results = {}  # scenario -> runtime -> (mean, median) in seconds
    print("benchmarking (rounds: %d x %d runs)" % (ROUNDS, RUNS_PER_ROUND), flush=True)

    results["run /bin/true"] = hyperfine("run", {rt: f"{cli(rt)} run -b {hello} r" for rt in NAMES})

    lifecycle = {}
    for rt in NAMES:
        pid = os.path.join(WORK, f"pid-{rt}")
        lifecycle[rt] = (f"{cli(rt)} create -b {hello} --pid-file {pid} l && {cli(rt)} start l && "
                         # Exited = gone or a zombie (this VM's PID 1 reaps slowly).
                         f"p=$(cat {pid}); while grep -qs '^State:[[:space:]]*[^Z[:space:]]' /proc/$p/status; do :; done; "
                         f"{cli(rt)} delete l")
    results["create, start, wait, delete"] = hyperfine("lifecycle", lifecycle, shell=True)

    for rt in NAMES:
        sh(f"{cli(rt)} create -b {sleeper} st")
    results["state of a created container"] = hyperfine("state", {rt: f"{cli(rt)} state st" for rt in NAMES})
    for rt in NAMES:
        sh(f"{cli(rt)} delete -f st", check=False)

    for rt in NAMES:
        sh(f"{cli(rt)} run -d -b {sleeper} ex")
    results["exec /bin/true"] = hyperfine("exec", {rt: f"{cli(rt)} exec ex /bin/true" for rt in NAMES})
    for rt in NAMES:
        sh(f"{cli(rt)} delete -f ex", check=False)

    many = {"100 started in parallel": {}, "100 deleted in parallel": {}, "100 deleted in sequence": {}}
    rounds = 1 if QUICK else 3
    for rt in NAMES:
        samples = {k: [] for k in many}
        for _ in range(rounds):
            samples["100 started in parallel"].append(
                timed(f"seq 100 | xargs -P 100 -I@ {cli(rt)} run -d -b {sleeper} p@"))
            samples["100 deleted in parallel"].append(timed(f"seq 100 | xargs -P 100 -I@ {cli(rt)} delete -f p@"))
            sh(f"seq 100 | xargs -P 100 -I@ {cli(rt)} run -d -b {sleeper} p@", check=False)
            samples["100 deleted in sequence"].append(timed(f"for i in $(seq 100); do {cli(rt)} delete -f p$i; done"))
        for k, v in samples.items():
            many[k][rt] = (statistics.mean(v), statistics.median(v))
    for k, v in many.items():
        print(f"  {k}: " + ", ".join(f"{rt} {m:.2f} s" for rt, (_, m) in v.items()), flush=True)
    results.update(many)

    rss = {}
    for rt in NAMES:
        kib = []
        for _ in range(5):
            out = sh(f"/usr/bin/time -f %M {cli(rt)} run -b {hello} m", check=False).stderr.strip().splitlines()
            kib.append(int(out[-1]))
        rss[rt] = statistics.median(kib)
    sizes = {rt: os.path.getsize(os.path.realpath(RUNTIMES[rt])) for rt in NAMES}
    floors = {rt: memory_floor(rt) for rt in NAMES}
    print("  peak RSS (KiB): %s; memory floor (KiB): %s" % (rss, {k: v // 1024 for k, v in floors.items()}), flush=True)
    write_report(results, rss, sizes, floors)


def memory_floor(rt):
    """The smallest linux.resources.memory.limit (256 KiB steps) under which
    `run` of /bin/true still succeeds."""
    lo, hi = 0, 64 << 20  # lo fails, hi succeeds
    step = 256 << 10
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step or step
        bundle = make_bundle(f"mem-{rt}", ["/bin/true"], memory_limit=mid)
        ok = sh(f"{cli(rt)} run -b {bundle} f", check=False).returncode == 0
        sh(f"{cli(rt)} delete -f f", check=False)
        shutil.rmtree(bundle, ignore_errors=True)
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


def version(rt):
    out = sh(f"{RUNTIMES[rt]} --version", check=False).stdout.strip().splitlines()
    return out[0] if out else "?"


# The report's scenario names -> the names hyperfine() was given.
SHORT = {
    "run /bin/true": "run",
    "create, start, wait, delete": "lifecycle",
    "state of a created container": "state",
    "exec /bin/true": "exec",
}


def write_report(results, rss, sizes, floors):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Performance",
        "",
        "Written by `conformance/bench.sh` from a real run; do not edit by hand.",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {cpu}, {os.cpu_count()} cores, kernel {platform.release()}",
        f"- versions: carte {version('carte')}; {version('crun')}; {version('runc')}; "
        + sh("hyperfine --version").stdout.strip(),
        f"- method: hyperfine, {ROUNDS} rounds of {RUNS_PER_ROUND} runs in rotated order; all three runtimes in one "
        "private mount namespace with the hybrid host's cgroup2 `cgroup.controllers` masked (crun 1.8 needs it)",
        "",
        "| scenario | carte mean / median | crun mean / median | runc mean / median | carte/crun | carte/crun per round (min–max) | carte/runc | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario, by_rt in results.items():
        unit, scale = ("s", 1) if scenario.startswith("100") else ("ms", 1000)
        cells = [f"{by_rt[rt][0] * scale:.2f} / {by_rt[rt][1] * scale:.2f} {unit}" for rt in NAMES]
        vs_crun = by_rt["carte"][1] / by_rt["crun"][1]
        vs_runc = by_rt["carte"][1] / by_rt["runc"][1]
        want = TARGETS.get(scenario, 1.0)
        target = f"≤ {want}× crun: {'met' if vs_crun <= want else 'missed'}"
        per_round = ROUND_RATIOS.get(SHORT.get(scenario, scenario))
        spread = f"{min(per_round):.2f}–{max(per_round):.2f}" if per_round else "—"
        lines.append(f"| {scenario} | " + " | ".join(cells) + f" | {vs_crun:.2f} | {spread} | {vs_runc:.2f} | {target} |")
    lines += [
        "",
        "| resource | carte | crun | runc |",
        "|---|---|---|---|",
        "| peak RSS of `run` (KiB, /usr/bin/time) | " + " | ".join(str(rss[rt]) for rt in NAMES) + " |",
        "| binary size (KiB) | " + " | ".join(str(sizes[rt] // 1024) for rt in NAMES) + " |",
        "| smallest memory limit that still starts /bin/true (KiB) | "
        + " | ".join(str(floors[rt] // 1024) for rt in NAMES) + " |",
        "",
        "![medians](performance.svg)",
        "",
    ]
    with open(os.path.join(REPO, "docs/performance.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(REPO, "docs/performance.svg"), "w") as f:
        f.write(chart({k: v for k, v in results.items() if not k.startswith("100")}))
    print("wrote docs/performance.md and docs/performance.svg")


def chart(results):
    """Grouped bars of the medians (ms), one group per scenario."""
    colors = {"carte": "#2a7", "crun": "#48c", "runc": "#c84"}
    width, height, left, bottom = 760, 320, 60, 60
    top = max(m for by_rt in results.values() for _, m in by_rt.values()) * 1000 * 1.15
    group = (width - left - 20) / len(results)
    bar = group / (len(NAMES) + 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="16">median time per operation (ms), lower is better</text>']
    plot_h = height - bottom - 30
    for i, (scenario, by_rt) in enumerate(results.items()):
        x0 = left + i * group
        for j, rt in enumerate(NAMES):
            ms = by_rt[rt][1] * 1000
            h = plot_h * ms / top
            x, y = x0 + j * bar + bar / 2, height - bottom - h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar * 0.9:.1f}" height="{h:.1f}" fill="{colors[rt]}"/>')
            out.append(f'<text x="{x + bar * 0.45:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10">{ms:.1f}</text>')
        out.append(f'<text x="{x0 + group / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">{scenario}</text>')
    for j, rt in enumerate(NAMES):
        out.append(f'<rect x="{left + j * 90}" y="{height - 22}" width="12" height="12" fill="{colors[rt]}"/>')
        out.append(f'<text x="{left + j * 90 + 16}" y="{height - 12}">{rt}</text>')
    out.append(f'<line x1="{left - 5}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#333"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
