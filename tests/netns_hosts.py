"""Several hosts on one Linux machine, for the multi-host test of the cluster launcher (issue 25).

Each host is a network namespace (``ip netns``) with one veth link on a bridge of the root namespace,
an address of the test's own subnet and no route anywhere else (nothing a host sends can leave the
bridge), and its own PID, mount and UTS namespaces: its own host name, its own ``/tmp`` and its own
home folder (``/root``), so the Ray sessions, the launcher's state and the token files of different
hosts never share a folder, and ``ray stop`` on one host sees only that host's processes. Each host's
``/etc/hosts`` names it with its own address, so Ray finds the node's address by its host name, as on
a LAN. A host that runs ``sshd`` is reached with the test's own key pair.

A host's processes all live in its PID namespace, whose first process (:data:`INIT`, a small reaper
that runs ``sshd``) dies with the ``unshare`` that started it (``--kill-child``): killing that one PID,
which the harness started itself, ends everything that ran on the host (the kernel kills every process
of a PID namespace whose first process ends). That is how :meth:`Hosts.cut_off` takes a host away
mid-run and how :meth:`Hosts.close` cleans up, even after a failure: by the PIDs it started, never by
process names. It needs root, ``ip``, ``unshare`` and OpenSSH's ``sshd`` (``openssh-server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

INIT = r'''
import os, signal, socket, subprocess, sys
name, hosts_file, sshd_config, covers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
socket.sethostname(name)
for cover in covers:  # "SOURCE=TARGET": SOURCE (with its submounts) appears at TARGET on this host only
    source, target = cover.split("=", 1)
    subprocess.run(["mount", "--rbind", source, target], check=True)
subprocess.run(["mount", "--bind", hosts_file, "/etc/hosts"], check=True)
sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", sshd_config]) if sshd_config != "-" else None
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:  # the first process of a PID namespace reaps every orphan of the host
    try:
        pid, _ = os.wait()
    except ChildProcessError:
        signal.pause()
'''
"""The first process of each host's PID namespace: names the host, mounts its own ``/tmp``, home and
``/etc/hosts``, starts ``sshd`` (unless ``-``) and reaps orphans (Ray daemonizes its processes)."""


def missing_tools() -> str | None:
    """Why these hosts cannot be made here (``None``: they can)."""
    if os.geteuid() != 0:
        return "needs root (network, PID and mount namespaces)"
    for tool in ("ip", "unshare", "mount", "ssh", "ssh-keygen", "rsync"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not Path("/usr/sbin/sshd").exists():
        return "needs sshd (apt-get install openssh-server)"
    return None


def run(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd``; on failure raise with its output."""
    done = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass
class Host:
    """One made host: ``name`` (its host name), ``ip``, its network namespace ``netns``, the folders that
    are its ``/tmp`` and ``/root`` (``tmp``, ``home``), and ``pid``: the ``unshare`` process whose death ends
    every process of the host."""

    name: str
    ip: str
    netns: str
    tmp: Path
    home: Path
    ssh: bool
    pid: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def init_pid(self) -> int | None:
        """PID (in the root namespace) of the host's first process, ``None`` once it has ended."""
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def pids(self) -> list[int]:
        """PIDs (root namespace) of every process running on the host (its PID namespace)."""
        init = self.init_pid()
        if init is None:
            return []
        try:
            ns = os.readlink(f"/proc/{init}/ns/pid")
        except OSError:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "pid") == ns:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def processes(self) -> list[str]:
        """The command lines of the host's processes (for assertions and failure reports)."""
        out = []
        for pid in self.pids():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            out.append(f"{pid} {cmd}")
        return out

    def exec(self, *cmd: str, env: dict[str, str] | None = None, timeout: float = 120,
             check: bool = False) -> subprocess.CompletedProcess:
        """Run ``cmd`` on the host: in its network namespace and, while it is up, in its PID and mount
        namespaces (its ``/tmp`` and home)."""
        init = self.init_pid()
        prefix = ["ip", "netns", "exec", self.netns]
        if init is not None:
            prefix += ["nsenter", "-t", str(init), "-p", "-m", "-u", "--"]
        return run(*prefix, *cmd, check=check, env=env, timeout=timeout)


class Hosts:
    """Hosts made of namespaces on a bridge (a context manager; :meth:`close` removes everything).

    Args:
        work: a folder outside ``/tmp`` for keys, configs and each host's ``/tmp`` and home.
        names: host names, in order; addresses ``<subnet>.10``, ``.11``, ... The bridge has ``<subnet>.1``.
        ssh: the names that run ``sshd`` (the others, e.g. an intruder, only run what the test runs there).
        keep_visible: folders every host must see at their usual path although they lie under a
            folder the host gets its own of (``/tmp``, ``/root``): the checkout, the Python environment.
        subnet: the first three octets of the test's own /24.
        tag: a short suffix for the bridge, links and namespaces (several runs side by side).

    Raises:
        RuntimeError: a step of the setup failed (its command and output); everything made so far is
            removed first.
    """

    def __init__(self, work: Path, names: tuple[str, ...], ssh: tuple[str, ...], keep_visible: tuple[Path, ...] = (),
                 subnet: str = "10.213.7", tag: str | None = None):
        self.work = Path(work)
        if str(self.work.resolve()).startswith("/tmp/"):
            raise ValueError(f"{work}: the hosts' folders must lie outside /tmp (each host gets its own /tmp)")
        self.tag = tag or f"{os.getpid() % 100000}"
        self.subnet = subnet
        self.bridge = f"embr{self.tag}"[:15]
        self.gateway = f"{subnet}.1"
        self.keep_visible = tuple(Path(p).resolve() for p in keep_visible)
        self.hosts = {n: Host(n, f"{subnet}.{10 + i}", f"emo{self.tag}-{n}"[:30], self.work / n / "tmp",
                              self.work / n / "home", n in ssh) for i, n in enumerate(names)}
        self.key = self.work / "id_ed25519"
        self._made_links: list[str] = []
        self._made_netns: list[str] = []
        self._binds: list[Path] = []

    # ------------------------------------------------------------------ setup
    def __enter__(self) -> Hosts:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Make the bridge, the namespaces, the keys and each host's folders, and start each host."""
        self.work.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
        for path in (self.key, self.work / "ssh_host_ed25519_key"):
            if not path.exists():
                run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path))
        (self.work / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self._made_links.append(self.bridge)
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        hosts_lines = [f"{h.ip} {h.name}" for h in self.hosts.values()]
        for i, h in enumerate(self.hosts.values()):
            outer, inner = f"ve{self.tag}{i}o"[:15], f"ve{self.tag}{i}i"[:15]
            run("ip", "netns", "add", h.netns)
            self._made_netns.append(h.netns)
            run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            self._made_links.append(outer)
            run("ip", "link", "set", inner, "netns", h.netns)
            run("ip", "link", "set", outer, "master", self.bridge, "up")
            for cmd in (("ip", "link", "set", "lo", "up"), ("ip", "addr", "add", f"{h.ip}/24", "dev", inner),
                        ("ip", "link", "set", inner, "up")):
                run("ip", "netns", "exec", h.netns, *cmd)
            for folder in (h.tmp, h.home):
                folder.mkdir(parents=True, exist_ok=True)
            h.tmp.chmod(0o1777)
            (self.work / h.name / "hosts").write_text("\n".join(["127.0.0.1 localhost", *hosts_lines, ""]))
            self._start_host(h)

    def _covers(self, h: Host) -> list[str]:
        """``SOURCE=TARGET`` mounts that give ``h`` its own ``/tmp`` and ``/root``, with the folders of
        :attr:`keep_visible` under them mounted back inside."""
        covers = []
        for own, target in ((h.tmp, Path("/tmp")), (h.home, Path("/root"))):
            for keep in self.keep_visible:
                if keep.is_relative_to(target):
                    inside = own / keep.relative_to(target)
                    inside.mkdir(parents=True, exist_ok=True)
                    run("mount", "--bind", str(keep), str(inside))  # seen again under the host's own folder
                    self._binds.append(inside)
            covers.append(f"{own}={target}")
        return covers

    def _start_host(self, h: Host) -> None:
        config = "-"
        if h.ssh:
            config_path = self.work / h.name / "sshd_config"
            config_path.write_text("\n".join([
                f"ListenAddress {h.ip}", "Port 22", f"HostKey {self.work / 'ssh_host_ed25519_key'}",
                f"PidFile {self.work / h.name / 'sshd.pid'}", f"AuthorizedKeysFile {self.work / 'authorized_keys'}",
                "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "UsePAM no", "StrictModes no", "PrintMotd no", "X11Forwarding no", "AllowTcpForwarding yes",
                "Subsystem sftp internal-sftp", ""]))
            config = str(config_path)
        h.proc = subprocess.Popen(
            ["ip", "netns", "exec", h.netns, "unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount",
             "--uts", "--mount-proc", "--propagation", "private", sys.executable, "-c", INIT, h.name,
             str(self.work / h.name / "hosts"), config, *self._covers(h)],
            stdout=subprocess.PIPE, stderr=open(self.work / h.name / "init.log", "ab"), text=True)
        h.pid = h.proc.pid
        line = h.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"host {h.name} did not start: {(self.work / h.name / 'init.log').read_text()[-2000:]}")
        if h.ssh:
            self._wait_for_port(h, 22)

    def _wait_for_port(self, h: Host, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex((h.ip, port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"host {h.name}: nothing listens on {h.ip}:{port} after {timeout} s; "
                           f"{(self.work / h.name / 'init.log').read_text()[-2000:]}")

    # ------------------------------------------------------------------ use
    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def ssh(self, name: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``command`` on host ``name`` through its sshd, as the launcher does."""
        return run("ssh", "-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"root@{self.hosts[name].ip}", command,
                   check=False, timeout=timeout)

    def cut_off(self, name: str) -> list[str]:
        """Take host ``name`` away at once: SIGKILL its ``unshare``, which kills the host's first process
        and with it every process on the host (its Ray node, its sshd); its link goes down too. Returns
        the processes it had."""
        h = self.hosts[name]
        had = h.processes()
        if h.proc is not None and h.proc.poll() is None:
            os.kill(h.pid, signal.SIGKILL)
            h.proc.wait(timeout=30)
        run("ip", "netns", "exec", h.netns, "ip", "link", "set", "lo", "down", check=False)
        deadline = time.monotonic() + 30
        while h.pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        return had

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        """End every host (by the PIDs this object started), then remove the namespaces, the links and the
        bind mounts. Safe to call twice and after a failed :meth:`start`."""
        for h in self.hosts.values():
            if h.proc is not None and h.proc.poll() is None:
                os.kill(h.pid, signal.SIGKILL)
                try:
                    h.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            if h.proc is not None and h.proc.stdout:
                h.proc.stdout.close()
        for h in self.hosts.values():
            deadline = time.monotonic() + 30
            while h.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
        for inside in reversed(self._binds):
            run("umount", "-l", str(inside), check=False)
        self._binds = []
        for netns in reversed(self._made_netns):
            run("ip", "netns", "del", netns, check=False)
        self._made_netns = []
        for link in reversed(self._made_links):
            run("ip", "link", "del", link, check=False)
        self._made_links = []

    def leftovers(self) -> list[str]:
        """What :meth:`close` should have removed and did not (namespaces, links, host processes)."""
        names = {h.netns for h in self.hosts.values()}
        left = [f"netns {n}" for n in run("ip", "netns", "list", check=False).stdout.split() if n in names]
        links = run("ip", "-o", "link", "show", check=False).stdout
        left += [f"link {self.bridge}"] if f" {self.bridge}:" in links or f" {self.bridge}@" in links else []
        left += [f"host {h.name}: process {p}" for h in self.hosts.values() for p in h.processes()]
        left += [f"host {h.name}: unshare {h.pid}" for h in self.hosts.values()
                 if h.proc is not None and h.proc.poll() is None]
        return left
