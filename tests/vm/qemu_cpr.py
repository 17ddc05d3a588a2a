#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""QEMU keeps a vhost-vdpa NIC across cpr-transfer, with a real guest.

Runs as root inside the test VM on the patched kernel, in the vdpa_sim mode
the VM was booted with, and prints TAP.  A nested guest (qemu/nested: a
small kernel whose init sends numbered frames to its own MAC and checks
every echo) runs on a patched QEMU 10.0 with -netdev vhost-vdpa over
vdpa_sim_net; while its frames flow, QEMU A hands the VM to QEMU B with
cpr-transfer (QMP), then B to C.  Also: B killed before it takes ownership
(A resumes the device and the guest goes on), a device that does not offer
VHOST_BACKEND_F_NEW_OWNER (refused with a message), a live migration to a
second device (what exists without the series, measured beside it), and
Debian's QEMU 7.2 running the same guest (regression by an unmodified
client).

Usage: qemu_cpr.py [--demo] [--check] [--cases a,b,...]
  --demo   one update with a readable timeline, no TAP
  --check  only check that the cases exist and FRAMES suffices for them
  --cases  transfer, chain, killed, refused, livemig, qemu72, svq, viommu,
           resetflow (noresume+killed+chain), or steps
           (transfer, killed, refused, livemig) joined by + to run them in
           turn on one guest: killed+chain is A, B killed, A again, C, D;
           noresume first: every QEMU's device hides RESUME (reset flow)
Environment: QEMU (patched QEMU 10.0 binary), QEMU_OLD (default
/usr/bin/qemu-system-x86_64), NESTED (directory with bzImage and
initramfs.cpio), BUILD, FRAMES (frames per guest run).
"""

import argparse
import ctypes
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
QEMU = os.environ.get("QEMU", os.path.join(BUILD, "qemu-build/qemu-system-x86_64"))
QEMU_OLD = os.environ.get("QEMU_OLD", "/usr/bin/qemu-system-x86_64")
NESTED = os.environ.get("NESTED", os.path.join(BUILD, "nested"))
TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
FRAMES = int(os.environ.get("FRAMES", "6000"))
RUN = os.environ.get("LOG", "/run/lu-tests") + "/qemu-cpr"
MAC = "52:54:00:12:34:56"
GUEST_MEM = 128
TIMEOUT = int(os.environ.get("LU_TIMEOUT", "900"))

tap_n = 0
tap_failed = 0
demo = False
spawned = []


def ok(cond, name, diag=None):
    global tap_n, tap_failed
    tap_n += 1
    if not cond:
        tap_failed += 1
    if demo:
        print(("PASS " if cond else "FAIL ") + name, flush=True)
    else:
        print(("ok %d " if cond else "not ok %d ") % tap_n + name, flush=True)
    if diag and (not cond or demo):
        for line in diag.splitlines():
            print("# " + line, flush=True)
    return cond


def note(msg):
    print(("" if demo else "# ") + msg, flush=True)


def guest_sh(call):
    """The words printed by CALL, shell code run after sourcing
    testbed/guest.sh: its readers of the pin counters and of vdpa_sim's
    mode are the test bed's only ones."""
    guest = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../testbed/guest.sh")
    return subprocess.run(["bash", "-c", '. "$0" && ' + call, guest], check=True,
                          stdout=subprocess.PIPE, universal_newlines=True).stdout.split()


def pins_balanced():
    """(nr_foll_pin_acquired == released, acquired, released), after up to
    5 s for a release on its way."""
    st, acq, rel = guest_sh('pins_balanced; echo "$? $pin_acquired $pin_released"')
    return st == "0", int(acq), int(rel)


def vmpin_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmPin:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def use_va():
    return guest_sh("vdpa_sim_mode")[0].startswith("va-")


class Qmp:
    """Just enough QMP: commands, and events kept with their timestamps."""

    def __init__(self, path, timeout=120):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""
        self.events = []
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self.read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError("%s: %s" % (name, r["error"]["desc"]))
            return r.get("return")

    def event_time(self, name):
        """Time of the latest event of that name (an earlier, cancelled
        update has its own)."""
        t = None
        for e in self.events:
            if e["event"] == name:
                t = e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6
        return t

    def poll_events(self):
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                self.buf += data
        finally:
            self.sock.setblocking(True)
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            r = json.loads(line)
            if "event" in r:
                self.events.append(r)


class Console:
    """The nested guest's serial console, a file every QEMU appends to."""

    LINE = re.compile(r"frames: boot (\w+) (\w+)(.*)")

    def __init__(self, path):
        self.path = path

    def lines(self):
        try:
            with open(self.path, errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def records(self):
        out = []
        for line in self.lines():
            m = self.LINE.search(line)
            if m:
                words = m.group(3).split()
                vals = {}
                for i in range(0, len(words) - 1):
                    if words[i + 1].isdigit():
                        vals[words[i]] = int(words[i + 1])
                out.append((m.group(1), m.group(2), vals))
        return out

    def echoed(self):
        n = 0
        for _, kind, vals in self.records():
            n = max(n, vals.get("echoed", 0))
        return n

    def so_far(self):
        """The guest's latest counts (its last progress or result line)."""
        recs = [r for r in self.records() if r[1] in ("progress", "done", "stalled")]
        return recs[-1][2] if recs else {}

    def done(self):
        for r in self.records():
            if r[1] in ("done", "stalled"):
                return r
        return None

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = pred()
            if r:
                return r
            time.sleep(0.2)
        raise TimeoutError("%s: not within %d s" % (what, timeout))


class Vdpa:
    """A vdpa_sim_net device bound to vhost_vdpa, with the guest's MAC."""

    def __init__(self, name):
        self.name = name
        out = subprocess.run(["bash", os.path.join(TOP, "testbed/vdpa-dev.sh"), "add", "net",
                              name, "mac", MAC], capture_output=True, text=True, check=True)
        self.dev = out.stdout.strip()

    def close(self):
        subprocess.run(["bash", os.path.join(TOP, "testbed/vdpa-dev.sh"), "del", self.name],
                       capture_output=True)


class Qemu:
    def __init__(self, name, binary, dev, console, incoming=None, new=True,
                 frames=FRAMES, env=None, netdev_opts="", viommu=False):
        self.name = name
        self.dev = dev
        self.dir = os.path.join(RUN, name)
        os.makedirs(self.dir, exist_ok=True)
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.log = os.path.join(self.dir, "qemu.log")
        self.trace = os.path.join(self.dir, "trace.log")
        for p in (self.qmp_path, self.trace):
            if os.path.exists(p):
                os.unlink(p)
        args = [binary, "-nodefaults", "-no-user-config", "-display", "none",
                "-vga", "none", "-no-reboot", "-accel", "tcg", "-cpu", "qemu64",
                "-m", "%dM" % GUEST_MEM,
                "-object", "memory-backend-memfd,id=ram0,size=%dM,share=on" % GUEST_MEM,
                "-machine", ("q35" if viommu else "pc") + ",memory-backend=ram0" +
                (",aux-ram-share=on" if new else ""),
                "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
                "-kernel", os.path.join(NESTED, "bzImage"),
                "-initrd", os.path.join(NESTED, "initramfs.cpio"),
                "-append", "console=ttyS0 panic=-1 loglevel=4 frames=%d rate=%d" % (frames, RATE),
                "-chardev", "file,id=con,path=%s,append=on" % console,
                "-serial", "chardev:con",
                "-netdev", "vhost-vdpa,vhostdev=%s,id=vdpa0%s" % (dev, netdev_opts)]
        if viommu:
            # Before the devices it translates for; the NIC's DMA goes through it.
            args += ["-device", "intel-iommu,intremap=off"]
        args += ["-device", "virtio-net-pci,netdev=vdpa0,mac=%s,romfile=,mq=off,"
                 "ctrl_vq=off,ctrl_rx=off,ctrl_vlan=off,ctrl_mac_addr=off,"
                 "guest_announce=off%s" % (MAC, ",disable-legacy=on,iommu_platform=on" if viommu else ""),
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if new:
            args += ["-msg", "timestamp=on", "-D", self.trace,
                     "-trace", "vhost_vdpa_suspend", "-trace", "vhost_vdpa_resume",
                     "-trace", "vhost_vdpa_cpr_*", "-trace", "vhost_vdpa_dma_remap",
                     "-trace", "vhost_vdpa_reset_device", "-trace", "vhost_vdpa_add_status",
                     "-trace", "virtio_net_limit_queue_size", "-trace", "vm_state_notify"]
        if incoming and incoming[1] is None:  # a normal migration
            args += ["-incoming", "unix:%s" % incoming[0]]
        elif incoming:
            args += ["-incoming", json.dumps(
                {"channel-type": "main",
                 "addr": {"transport": "socket", "type": "unix", "path": incoming[0]}}),
                     "-incoming", json.dumps(
                {"channel-type": "cpr",
                 "addr": {"transport": "socket", "type": "unix", "path": incoming[1]}})]
        self.args = args
        self.proc = subprocess.Popen(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self.pid = self.proc.pid
        self.qmp = None
        spawned.append(self)

    def connect(self, timeout=120):
        self.qmp = Qmp(self.qmp_path, timeout)
        return self.qmp

    def output(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def trace_time(self, event, args=""):
        """Host time of the last trace line for event (whose arguments
        contain args), from -msg timestamp=on."""
        t = None
        try:
            with open(self.trace, errors="replace") as f:
                for line in f:
                    m = re.match(r"\d+@(\d+)\.(\d+):(\w+)(.*)", line)
                    if m and m.group(3) == event and args in m.group(4):
                        t = int(m.group(1)) + int(m.group(2)) / 1e6
        except OSError:
            pass
        return t

    def trace_count(self, event):
        n = 0
        try:
            with open(self.trace, errors="replace") as f:
                for line in f:
                    m = re.match(r"\d+@\d+\.\d+:(\w+)", line)
                    if m and m.group(1) == event:
                        n += 1
        except OSError:
            pass
        return n

    def quit(self):
        try:
            if self.qmp is None:
                self.connect(5)
            self.qmp.cmd("quit")
        except Exception:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()

    def alive(self):
        return self.proc.poll() is None


def sockets(tag):
    d = os.path.join(RUN, "sock-" + tag)
    os.makedirs(d, exist_ok=True)
    paths = (os.path.join(d, "main.sock"), os.path.join(d, "cpr.sock"))
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)
    return paths


def cpr_channels(main, cpr):
    """The two channels of a cpr-transfer migrate command (UNIX sockets)."""
    return [{"channel-type": t, "addr": {"transport": "socket", "type": "unix", "path": p}}
            for t, p in (("main", main), ("cpr", cpr))]


def cpr_update(src, name, console, timeline, pause_switchover=False, env=None):
    """Start a new QEMU on src's device that takes over src's VM by cpr-transfer."""
    main, cpr = sockets(name)
    dst = Qemu(name, QEMU, src.dev, console, incoming=(main, cpr), env=env)
    # The new QEMU listens on the cpr socket once it has started up
    deadline = time.time() + 300
    while not os.path.exists(cpr) and dst.alive() and time.time() < deadline:
        time.sleep(0.05)
    q = src.qmp
    q.cmd("migrate-set-parameters", mode="cpr-transfer")
    # Set either way: an earlier, cancelled attempt from src may have set it.
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": "pause-before-switchover", "state": pause_switchover}])
    t0 = time.time()
    timeline.append((t0, "%s: migrate (cpr-transfer) to %s" % (src.name, name)))
    # The new QEMU reads the CPR state first; it listens on main afterwards.
    q.cmd("migrate", channels=cpr_channels(main, cpr))
    return dst


def wait_migration(q, want, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = q.cmd("query-migrate")
        st = info.get("status")
        if st in want:
            return info
        if st in ("failed", "cancelled") and st not in want:
            return info
        time.sleep(0.05)
    raise TimeoutError("migration did not reach %s" % (want,))


def wait_running(q, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = q.cmd("query-status")
        if st.get("running"):
            return True
        time.sleep(0.05)
    return False


def check_guest(console, frames, what, livemig_after=None):
    """The guest's own verdict: one boot, every frame back once, in order.
    After a live migration (livemig_after: echoes before it), which is
    measured here and is not this series', frames it lost are counted and
    reported; what came before it was checked as the migration began."""
    rec = console.done()
    starts = [r for r in console.records() if r[1] == "start"]
    boots = {r[0] for r in console.records()}
    ok(len(starts) == 1 and len(boots) == 1,
       "%s: the guest never rebooted (one boot id, %d start line(s))" % (what, len(starts)),
       "\n".join(console.lines()[-20:]))
    if not rec:
        ok(False, "%s: the guest reported its result" % what, "\n".join(console.lines()[-20:]))
        return None
    vals = rec[2]
    if livemig_after is not None:
        ok(rec[1] == "done" and vals.get("sent") == frames and
           vals.get("echoed", 0) + vals.get("lost", 0) == frames,
           "%s: every frame came back or was counted lost: sent %s echoed %s lost %s of %d" % (
               what, vals.get("sent"), vals.get("echoed"), vals.get("lost"), frames),
           "\n".join(console.lines()[-20:]))
        note("%s: across the live migration (after %d echoes): lost %s dup %s reordered %s" % (
            what, livemig_after, vals.get("lost"), vals.get("dup"), vals.get("reordered")))
        return vals
    ok(rec[1] == "done" and vals.get("echoed") == frames and vals.get("sent") == frames,
       "%s: every frame came back: sent %s echoed %s of %d" % (
           what, vals.get("sent"), vals.get("echoed"), frames),
       "\n".join(console.lines()[-20:]))
    ok(vals.get("lost") == 0 and vals.get("dup") == 0 and vals.get("reordered") == 0,
       "%s: exactly once and in order: lost %s dup %s reordered %s" % (
           what, vals.get("lost"), vals.get("dup"), vals.get("reordered")))
    return vals


# Echoes (the guest reports every 500) that show traffic before the first
# step, and again after each one.
FLOWING = 1000
AGAIN = 500
# Frames a second the guest sends: what the budget below was sized at (the
# machines it was measured on managed 90-100 a second).  Unpaced, a guest
# on a faster machine (700 a second seen) sends its last frame while the
# last update of a chain is still being set up.
RATE = 100
# Frames a step needs while the new QEMU starts and the migration runs:
# the old QEMU runs the guest meanwhile (a new QEMU took 6 s to start on a
# busy machine, ~540 frames).  A guest that sends its last frame before
# the switchover resets its NIC and the new QEMU has nothing to take over.
MARGIN = 1500


class Guest:
    """One nested guest from boot to its result, and the QEMU running it now.

    A case is a sequence of steps on one guest (cpr-transfer hops, a new
    QEMU killed half-way, a refused update, a live migration); each step
    starts from whatever QEMU runs the guest and leaves the guest running,
    on the same QEMU or a new one.  The guest's own verdict (one boot,
    every frame back once) covers all of them."""

    def __init__(self, tag, dev, binary=QEMU, new=True, env=None, **qemu_opts):
        self.tag = tag
        self.env = env  # every QEMU of this guest's cpr-transfers runs with it
        self.console = Console(os.path.join(RUN, tag + "-console.log"))
        if os.path.exists(self.console.path):
            os.unlink(self.console.path)
        self.timeline = []
        self.letters = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        self.cur = Qemu(self.next_name(), binary, dev, self.console.path, new=new,
                        frames=FRAMES, env=env, **qemu_opts)
        self.cur.connect()
        self.timeline.append((time.time(), "%s: started, pid %d" % (self.cur.name, self.cur.pid)))
        self.pin_first = None
        self.livemig_after = None  # echoes before a live migration step
        self.reset_flow = bool(env) and env.get("LU_SHIM_HIDE") == "resume"

    def next_name(self):
        return "%s-%s" % (self.tag, next(self.letters))

    def wait_flowing(self):
        a, console = self.cur, self.console
        t0 = time.time()
        console.wait(lambda: any(r[1] == "start" for r in console.records()) or not a.alive(),
                     TIMEOUT, "the guest's first line")
        t1 = time.time()
        console.wait(lambda: console.echoed() >= FLOWING or console.done() or not a.alive(),
                     TIMEOUT, "%d echoes" % FLOWING)
        t2 = time.time()
        note("%s: guest up %.1f s after start, %d echoes in %.1f s (%.0f/s)" % (
            a.name, t1 - t0, console.echoed(), t2 - t1, console.echoed() / max(t2 - t1, 0.001)))
        flowing = console.echoed() >= FLOWING and not console.done()
        ok(flowing, "%s: traffic flows on %s (%d echoes)" % (self.tag, a.name, console.echoed()),
           a.output() + "\n".join(console.lines()[-10:]))
        self.pin_first = vmpin_kb(a.pid)
        return flowing

    def echoes_again(self, before, what):
        """Wait for AGAIN more echoes; true if they came, or if the guest
        sent its last frame first and every echo since came back.  A few
        echoes and then silence is a device that stopped: the frames
        already in its rings come back, nothing after them does."""
        try:
            self.console.wait(lambda: self.console.echoed() >= before + AGAIN or self.console.done(),
                              TIMEOUT, "echoes after " + what)
        except TimeoutError:
            pass
        if self.console.echoed() >= before + AGAIN:
            return True
        end = self.console.done()
        return bool(end) and end[1] == "done" and self.console.echoed() > before

    def finish(self):
        """Let the guest send its last frames, check its verdict, stop it."""
        try:
            self.console.wait(self.console.done, TIMEOUT, "the guest's result")
        except TimeoutError:
            pass
        vals = check_guest(self.console, FRAMES, self.tag, self.livemig_after)
        if vals:
            note("%s: guest-visible pause (largest gap between two echoes, guest clock) %.1f ms" % (
                self.tag, vals.get("maxgap_us", 0) / 1e3))
        self.cur.quit()
        bal, acq, rel = pins_balanced()
        ok(bal, "%s: pins balanced after the last QEMU exits (acquired %d, released %d)" % (
            self.tag, acq, rel))


def step_transfer(g):
    """The running QEMU hands the VM to a new one by cpr-transfer."""
    tag, cur, console = g.tag, g.cur, g.console
    name = g.next_name()
    before = console.echoed()
    g.timeline.append((time.time(), "%s: %d echoes so far, VmPin %s kB" % (
        cur.name, before, vmpin_kb(cur.pid))))
    dst = cpr_update(cur, name, console.path, g.timeline, env=g.env)
    info = wait_migration(cur.qmp, ("completed",))
    ok(not console.done(), "%s: the guest still had frames to send at the switchover to %s" % (
        tag, name), "FRAMES=%d is too few for this machine" % FRAMES)
    done = info.get("status") == "completed"
    ok(done, "%s: cpr-transfer %s -> %s completed" % (tag, cur.name, name),
       json.dumps(info) + "\n" + dst.output())
    if not done:
        dst.kill()
        return False
    q = dst.connect()
    running = wait_running(q)
    ok(running, "%s: %s runs the guest" % (tag, name), dst.output())
    cur.qmp.poll_events()
    t_stop = cur.qmp.event_time("STOP")
    # The new QEMU resumes the guest before anyone is connected to its QMP
    # socket, so its RESUME event reaches nobody; its trace has it.
    t_resume = dst.trace_time("vm_state_notify", "running 1")
    t_susp = cur.trace_time("vhost_vdpa_suspend")
    # The device runs again: RESUME, or DRIVER_OK after the reset flow's setup
    t_res = (dst.trace_time("vhost_vdpa_add_status", "status: 0x4") if g.reset_flow
             else dst.trace_time("vhost_vdpa_resume"))
    pin_old = vmpin_kb(cur.pid)
    # Traffic again on the new QEMU before the old one goes
    moved = g.echoes_again(before, "the update")
    pin_new = vmpin_kb(dst.pid)
    for t, what in ((t_susp, "%s: VHOST_VDPA_SUSPEND (device kept, not reset)" % cur.name),
                    (t_stop, "%s: STOP" % cur.name),
                    (t_resume, "%s: RESUME" % name),
                    (t_res, "%s: VHOST_NEW_OWNER, remap, VHOST_VDPA_RESUME done" % name)):
        if t:
            g.timeline.append((t, what))
    cur.quit()
    g.cur = dst
    g.timeline.append((time.time(), "%s: quit" % cur.name))
    ok(moved, "%s: frames echo again through %s (%d -> %d)" % (tag, name, before, console.echoed()))
    ok(pin_new == g.pin_first,
       "%s: VmPin of %s equals the first QEMU's (%s kB, it had %s kB, %s had %s kB before it quit)" % (
           tag, name, pin_new, g.pin_first, cur.name, pin_old))
    ok(dst.trace_count("vhost_vdpa_cpr_new_owner") == 1,
       "%s: %s took the device with VHOST_NEW_OWNER" % (tag, name), dst.output())
    remaps = dst.trace_count("vhost_vdpa_dma_remap")
    if use_va():
        ok(remaps > 0, "%s: %s remapped guest memory (%d VHOST_IOTLB_REMAP)" % (tag, name, remaps))
    else:
        ok(remaps == 0, "%s: %s sent no remap on a PA device (%d)" % (tag, name, remaps))
    if g.reset_flow:
        ok(dst.trace_count("vhost_vdpa_resume") == 0 and
           dst.trace_count("vhost_vdpa_reset_device") > 0,
           "%s: %s restarted the device by reset and setup, not RESUME (%d reset(s))" % (
               tag, name, dst.trace_count("vhost_vdpa_reset_device")), dst.output())
    else:
        ok(dst.trace_count("vhost_vdpa_resume") == 1,
           "%s: %s resumed the device without rebuilding it" % (tag, name), dst.output())
    note("%s %s -> %s: QEMU downtime %s ms; VM stopped %s ms (STOP -> RESUME); "
         "device blackout %s ms (SUSPEND -> RESUME or DRIVER_OK)" % (
             tag, cur.name, name, info.get("downtime"),
             "%.1f" % ((t_resume - t_stop) * 1e3) if t_resume and t_stop else "?",
             "%.1f" % ((t_res - t_susp) * 1e3) if t_res and t_susp else "?"))
    return True


def step_killed(g):
    """The new QEMU dies before it takes ownership: the old one resumes
    its device and the guest goes on there."""
    tag, a, console = g.tag, g.cur, g.console
    kept, resumed = a.trace_count("vhost_vdpa_cpr_kept"), a.trace_count("vhost_vdpa_resume")
    resets = a.trace_count("vhost_vdpa_reset_device")
    lines_before = len(a.output().splitlines())
    b = cpr_update(a, g.next_name(), console.path, g.timeline, pause_switchover=True, env=g.env)
    info = wait_migration(a.qmp, ("pre-switchover",))
    ok(info.get("status") == "pre-switchover",
       "%s: %s stopped the guest and waits before switchover" % (tag, a.name), json.dumps(info))
    ok(a.trace_count("vhost_vdpa_cpr_kept") == kept + 1,
       "%s: %s suspended the device, kept it (no reset)" % (tag, a.name), a.output())
    b.kill()
    a.qmp.cmd("migrate_cancel")
    info = wait_migration(a.qmp, ("cancelled", "failed"))
    ok(info.get("status") in ("cancelled", "failed"),
       "%s: the migration ends (%s) once %s is gone" % (tag, info.get("status"), b.name))
    ok(wait_running(a.qmp, 60), "%s: %s runs the guest again" % (tag, a.name), a.output())
    before = console.echoed()
    ok(g.echoes_again(before, "%s was killed" % b.name),
       "%s: frames echo again on %s (%d -> %d)" % (tag, a.name, before, console.echoed()),
       a.output())
    if g.reset_flow:
        ok(a.trace_count("vhost_vdpa_resume") == resumed and
           a.trace_count("vhost_vdpa_reset_device") > resets,
           "%s: %s restarted the device it had suspended by reset and setup" % (tag, a.name),
           a.output())
    else:
        ok(a.trace_count("vhost_vdpa_resume") == resumed + 1,
           "%s: %s resumed the device it had suspended" % (tag, a.name), a.output())
    ok(vmpin_kb(a.pid) == g.pin_first,
       "%s: %s still holds its pins (VmPin %s kB, %s kB at first)" % (
           tag, a.name, vmpin_kb(a.pid), g.pin_first))
    # The device start and the end of the migration's dirty log that
    # follow a cancelled update must not fail on the way (vhost says so
    # on stderr, and falls back to userspace virtio where it must).
    complaints = [l for l in a.output().splitlines()[lines_before:]
                  if re.search(r"vhost|vdpa|falling back", l, re.I)]
    ok(not complaints, "%s: %s restarted its device without an error" % (tag, a.name),
       "\n".join(complaints))
    return True


def ask_cpr_transfer(a, tag):
    """Ask QEMU a for a cpr-transfer to sockets nobody listens on: a
    refusal must come first.  The error, or "" if none came."""
    main, cpr = sockets(tag)
    a.qmp.cmd("migrate-set-parameters", mode="cpr-transfer")
    try:
        a.qmp.cmd("migrate", channels=cpr_channels(main, cpr))
    except RuntimeError as e:
        return str(e)
    return ""


def step_refused(g, reason="VHOST_BACKEND_F_NEW_OWNER", traffic=True):
    """cpr-transfer refused, naming the reason, before anything changes:
    the guest runs on, the device was never suspended."""
    tag, a, console = g.tag, g.cur, g.console
    suspends = a.trace_count("vhost_vdpa_suspend")
    err = ask_cpr_transfer(a, tag + "-refused")
    ok(reason in err, "%s: migrate refuses with a message naming %s" % (tag, reason), err)
    note("%s: QEMU says: %s" % (tag, err))
    before = console.echoed()
    ok(a.qmp.cmd("query-status").get("running"), "%s: the guest keeps running on %s" % (tag, a.name))
    if traffic:
        ok(g.echoes_again(before, "the refusal"),
           "%s: frames keep coming back (%d -> %d)" % (tag, before, console.echoed()))
    ok(a.trace_count("vhost_vdpa_suspend") == suspends, "%s: the device was never suspended" % tag)
    return True


def step_livemig(g, dev2):
    """What a user has without the series: a live migration to a new QEMU
    on the same host, onto a second vdpa device.  Measured beside
    cpr-transfer; QEMU may refuse it, and the guest then stays where it is."""
    tag, a, console = g.tag, g.cur, g.console
    name = g.next_name()
    main, _ = sockets(name)
    b = Qemu(name, QEMU, dev2, console.path, incoming=(main, None))
    deadline = time.time() + 300
    while not os.path.exists(main) and b.alive() and time.time() < deadline:
        time.sleep(0.05)
    before = console.echoed()
    seen = console.so_far()
    ok(seen.get("lost") == 0 and seen.get("dup") == 0 and seen.get("reordered") == 0,
       "%s: exactly once and in order before the live migration: %d echoes, lost %s dup %s "
       "reordered %s" % (tag, before, seen.get("lost"), seen.get("dup"), seen.get("reordered")))
    if g.livemig_after is None:
        g.livemig_after = before
    err = ""
    try:
        # A cpr-transfer step before may have left these set.
        a.qmp.cmd("migrate-set-parameters", mode="normal")
        a.qmp.cmd("migrate-set-capabilities",
                  capabilities=[{"capability": "pause-before-switchover", "state": False}])
        a.qmp.cmd("migrate", uri="unix:%s" % main)
        info = wait_migration(a.qmp, ("completed",))
    except (RuntimeError, TimeoutError) as e:
        err, info = str(e), {}
    if info.get("status") != "completed":
        note("%s: QEMU could not live-migrate the vhost-vdpa NIC: %s" % (
            tag, err or json.dumps(info)))
        b.kill()
        return wait_running(a.qmp, 60)
    q = b.connect()
    ok(wait_running(q), "%s: %s runs the guest after the live migration" % (tag, name), b.output())
    a.quit()
    g.cur = b
    moved = g.echoes_again(before, "the live migration")
    note("%s: live migration %s -> %s: QEMU downtime %s ms, total %s ms (%d echoes before)" % (
        tag, a.name, name, info.get("downtime"), info.get("total-time"), before))
    ok(moved, "%s: frames echo again through %s (%d -> %d)" % (tag, name, before, console.echoed()))
    return True


def case_svq(dev):
    """Shadow virtqueues (x-svq=on) live in the old QEMU's memory.  The
    refusal comes from a blocker set when the netdev is created, so it is
    asked for while the guest boots, without waiting for its traffic."""
    g = Guest("svq", dev, netdev_opts=",x-svq=on")
    step_refused(g, "x-svq", traffic=False)
    g.cur.quit()
    bal, acq, rel = pins_balanced()
    ok(bal, "svq: pins balanced after %s exits (acquired %d, released %d)" % (g.cur.name, acq, rel))
    return g


def case_viommu(dev):
    """A vIOMMU's mappings are not guest memory regions the new QEMU can
    name.  That is known once the guest drives the NIC, and QEMU checks it
    when the migration sets up, after the CPR state went to the new QEMU:
    so a new QEMU listens, the migration fails naming the vIOMMU, and the
    old QEMU runs on with a device nobody touched."""
    g = Guest("viommu", dev, viommu=True)
    if not g.wait_flowing():
        g.cur.kill()
        return g
    tag, a, console = g.tag, g.cur, g.console
    b = cpr_update(a, g.next_name(), console.path, g.timeline)
    info = wait_migration(a.qmp, ("failed", "cancelled", "completed"))
    ok(info.get("status") == "failed" and "vIOMMU" in info.get("error-desc", ""),
       "%s: the migration fails naming the vIOMMU (%s)" % (tag, info.get("status")), json.dumps(info))
    note("%s: QEMU says: %s" % (tag, info.get("error-desc")))
    b.kill()
    ok(wait_running(a.qmp, 60), "%s: the guest keeps running on %s" % (tag, a.name), a.output())
    before = console.echoed()
    ok(g.echoes_again(before, "the refusal"),
       "%s: frames keep coming back (%d -> %d)" % (tag, before, console.echoed()))
    ok(a.trace_count("vhost_vdpa_suspend") == 0, "%s: the device was never suspended" % tag)
    ok(b.trace_count("vhost_vdpa_cpr_new_owner") == 0,
       "%s: %s never took the device" % (tag, b.name), b.output())
    g.finish()
    return g


# What each case does to one guest.  A case given as "step+step+..." runs
# those steps in turn (make check joins several so that one guest boot
# serves them: the nested guest's boot is most of a case's time).
STEPS = ("transfer", "killed", "refused", "livemig")
CASES = {
    "transfer": ["transfer"],
    "chain": ["transfer", "transfer"],
    "killed": ["killed"],
    "refused": ["refused"],
    "livemig": ["livemig"],
    "qemu72": [],
    "svq": [],
    "viommu": [],
    # On a device without RESUME, the reset flow: B killed, A restarts its
    # device by reset, then A -> C -> D
    "resetflow": ["noresume", "killed", "transfer", "transfer"],
}


def case_steps(case):
    """The steps of a case name, or a message saying why it is not one."""
    steps = list(CASES[case]) if case in CASES else []
    for i, s in enumerate([] if case in CASES else case.split("+")):
        if s in STEPS or s == "chain":  # chain: transfer+transfer
            steps += CASES[s]
        elif s in ("noresume", "resetflow") and i == 0:
            # The device of every QEMU of the case hides RESUME
            steps += CASES["resetflow"] if s == "resetflow" else ["noresume"]
        else:
            return None, "unknown case or step %s in %s" % (s, case)
    if "noresume" in steps and "refused" in steps:
        return None, "%s: one device cannot hide both RESUME and F_NEW_OWNER" % case
    # A refusing device refuses every update that follows on the same
    # QEMU; a live migration moves the guest to one that does not refuse.
    refusing = False
    for s in steps:
        if s == "refused":
            refusing = True
        elif s == "livemig":
            refusing = False
        elif refusing:
            return None, "%s: %s after a refusal, on the same QEMU" % (case, s)
    if steps and steps[0] == "noresume" and not steps[1:]:
        return None, "%s: noresume alone does nothing" % case
    n = len([s for s in steps if s != "noresume"])
    if n and FLOWING + n * AGAIN + MARGIN > FRAMES:
        return None, "%s: %d frames are too few for %d steps (%d at least)" % (
            case, FRAMES, n, FLOWING + n * AGAIN + MARGIN)
    return steps, None


def shim_env(hide):
    return dict(os.environ, LD_PRELOAD=os.path.join(BUILD, "qemu-tests/backend-shim.so"),
                LU_SHIM_HIDE=hide)


def run_case(case, dev, extra_dev):
    if case == "svq":
        return case_svq(dev)
    if case == "viommu":
        return case_viommu(dev)
    steps = case_steps(case)[0]
    env = None
    if "refused" in steps:
        # Until a live migration moves the guest, its QEMU runs with a
        # device that hides F_NEW_OWNER (see backend-shim.c).
        env = shim_env("new-owner")
    elif steps and steps[0] == "noresume":
        # A device without RESUME: a QEMU restarts it by reset and setup
        env = shim_env("resume")
        steps = steps[1:]
    if case == "qemu72":
        # Debian's QEMU 7.2, unmodified, runs the same guest over the patched kernel.
        g = Guest("qemu72", dev, binary=QEMU_OLD, new=False)
    else:
        g = Guest(case, dev, env=env)
    if steps and not g.wait_flowing():
        g.cur.kill()
        return g
    for s in steps:
        if s == "transfer":
            going = step_transfer(g)
        elif s == "killed":
            going = step_killed(g)
        elif s == "refused":
            going = step_refused(g)
        else:
            going = step_livemig(g, extra_dev())
        if not going:
            g.cur.kill()
            return g
    g.finish()
    return g


def version(binary):
    try:
        return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception as e:
        return "unknown (%s)" % e



def main():
    global demo
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--check", action="store_true",
                    help="only check the cases (on the host, before a boot)")
    args = ap.parse_args()
    demo = args.demo
    cases = args.cases.split(",")
    # A misspelt case would run nothing and pass.
    for c in cases:
        why = case_steps(c)[1]
        if why:
            ap.error("%s (cases: %s, or steps %s joined by +)" % (
                why, ", ".join(CASES), ", ".join(STEPS)))
    if args.check:
        return 0
    os.makedirs(RUN, exist_ok=True)
    # PA mode pins all guest memory
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    dver = ""
    try:
        with open(os.path.join(BUILD, "qemu-build/debian-version")) as f:
            dver = f.read().strip()
    except OSError:
        pass
    mode = "VA" if use_va() else "PA"
    note("QEMU under test: %s (Debian source %s), %s; old QEMU: %s" % (
        version(QEMU), dver, QEMU, version(QEMU_OLD)))
    note("vdpa_sim mode: %s; guest: %d MiB, %d frames" % (mode, GUEST_MEM, FRAMES))
    vd = Vdpa("qcpr0")
    second = []

    def extra_dev():
        # The live migration's destination device, made when first needed
        if not second:
            second.append(Vdpa("qcpr1"))
        return second[0].dev

    try:
        timeline = []
        for c in cases:
            t = time.time()
            try:
                g = run_case(c, vd.dev, extra_dev)
                if not timeline:
                    timeline = g.timeline
            except Exception as e:
                ok(False, "%s: ran to the end" % c, repr(e))
            # Whatever a failed case left running holds the device
            for q in spawned:
                q.kill()
            spawned.clear()
            note("%s: %.0f s" % (c, time.time() - t))
        if demo and timeline:
            t0 = timeline[0][0]
            print("\ntimeline (ms from start of QEMU A):")
            for t, what in sorted(timeline):
                print("  %10.1f  %s" % ((t - t0) * 1e3, what))
    finally:
        vd.close()
        for v in second:
            v.close()
        # Logs, consoles and traces for a post-mortem on the host (build/vm/NAME)
        if os.path.isdir("/run/out"):
            import shutil
            shutil.copytree(RUN, "/run/out/qemu-cpr", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.sock"))
    if demo:
        print("%d passed, %d failed" % (tap_n - tap_failed, tap_failed))
    else:
        print("1..%d" % tap_n, flush=True)
    return 1 if tap_failed else 0


if __name__ == "__main__":
    sys.exit(main())
