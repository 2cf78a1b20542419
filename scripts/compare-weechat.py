#!/usr/bin/env python3
"""Side-by-side figures of hum's TUI and WeeChat on this machine, both in tmux at 120x40.

- startup: launch to the first frame on screen (polling tmux every 2 ms)
- redraw: CPU time per scroll redraw of a buffer holding 10,000 messages
- idle: CPU over 20 s doing nothing, and resident memory

Needs tmux and weechat (apt-get install tmux weechat-curses) and release builds of hum
and hum-client-figures' helpers: `cargo build --release -p hum -p hum-relay -p hum-tests --bins`.
Run: python3 scripts/compare-weechat.py
"""
import json, os, shutil, subprocess, sys, tempfile, time

SOCK = "hum-compare"
HZ = os.sysconf("SC_CLK_TCK")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUM = os.path.join(ROOT, "target", "release", "hum")

def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCK, *args], check=True, capture_output=True, text=True).stdout

def pane_pid(session):
    return int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())

def child_pid(pid, name):
    # The pane runs a shell or the program itself; find the program among its descendants.
    for _ in range(200):
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        if open(f"/proc/{pid}/comm").read().strip().startswith(name):
            return pid
        for c in out:
            if open(f"/proc/{c}/comm").read().strip().startswith(name):
                return int(c)
        time.sleep(0.01)
    return pid

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ

def rss_kib(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
    return 0

def start(session, cmd, marker, env=None):
    t0 = time.monotonic()
    full = " ".join(f"{k}={v}" for k, v in (env or {}).items()) + " " + cmd
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", full)
    while True:
        screen = tmux("capture-pane", "-p", "-t", session)
        if marker in screen:
            return time.monotonic() - t0
        if time.monotonic() - t0 > 30:
            raise SystemExit(f"{session}: no {marker!r} on screen:\n{screen}")
        time.sleep(0.002)

def redraw_cost(session, pid, n=100):
    time.sleep(1)
    c0 = cpu(pid)
    for i in range(n):
        tmux("send-keys", "-t", session, "PageUp" if (i // 10) % 2 == 0 else "PageDown")
        time.sleep(0.03)
    time.sleep(1)
    return (cpu(pid) - c0) / n

def idle(pid, secs=20):
    c0, t0 = cpu(pid), time.monotonic()
    time.sleep(secs)
    return (cpu(pid) - c0) / (time.monotonic() - t0) * 100, rss_kib(pid)

def main():
    subprocess.run(["tmux", "-L", SOCK, "kill-server"], capture_output=True)
    tmp = tempfile.mkdtemp(prefix="hum-compare-")
    results = {}
    try:
        # hum: a relay, and a profile holding a room of 10,000 messages.
        relay = subprocess.Popen([os.path.join(ROOT, "target", "release", "hum-relay"), "--listen", "127.0.0.1:0", "--ephemeral"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        addr = relay.stdout.readline().strip()
        env = {"HUM_HOME": tmp, "HUM_PASSPHRASE": "pass", "HUM_INSECURE_FAST_KDF": "1", "TERM": "xterm-256color"}
        seed = subprocess.run([os.path.join(ROOT, "target", "release", "hum-client-figures"), "seed", tmp, "10000"],
                              capture_output=True, text=True)
        if seed.returncode != 0:
            raise SystemExit(seed.stderr)
        t = start("hum", f"{HUM} --profile bench --relay '{addr}'", "hum ·", env)
        pid = child_pid(pane_pid("hum"), "hum")
        tmux("send-keys", "-t", "hum", "M-1")
        time.sleep(1)
        r = redraw_cost("hum", pid)
        cpu_pct, rss = idle(pid)
        results["hum"] = {"startup_ms": round(t * 1e3, 1), "redraw_cpu_us": round(r * 1e6), "idle_cpu_percent": round(cpu_pct, 2), "rss_kib": rss}
        tmux("kill-session", "-t", "hum")
        relay.terminate()

        # WeeChat: a fresh home, 10,000 lines in the core buffer.
        wc = os.path.join(tmp, "weechat")
        os.makedirs(wc)
        t = start("weechat", f"weechat -d {wc}", "[core]", {"TERM": "xterm-256color"})
        pid = child_pid(pane_pid("weechat"), "weechat")
        tmux("send-keys", "-t", "weechat", "/repeat 10000 /print message the quick brown fox jumps over the lazy dog", "Enter")
        time.sleep(5)
        r = redraw_cost("weechat", pid)
        cpu_pct, rss = idle(pid)
        results["weechat"] = {"startup_ms": round(t * 1e3, 1), "redraw_cpu_us": round(r * 1e6), "idle_cpu_percent": round(cpu_pct, 2), "rss_kib": rss}
        ver = subprocess.run(["weechat", "--version"], capture_output=True, text=True).stdout.strip()
        results["weechat"]["version"] = ver
        results["ratio_hum_over_weechat"] = {
            k: round(results["hum"][k] / results["weechat"][k], 2) if results["weechat"][k] else None
            for k in ("startup_ms", "redraw_cpu_us", "idle_cpu_percent", "rss_kib")
        }
        print(json.dumps(results))
    finally:
        subprocess.run(["tmux", "-L", SOCK, "kill-server"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
