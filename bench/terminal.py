"""Time to the first byte a user sees on a terminal: `exec -t` of an echo
and `rt attach` to a terminal container, each with a pty of its own as
stdin, stdout and stderr, as from an interactive shell."""

import os
import pty
import select
import subprocess
import time
import tty


def first_byte(argv, send=b"", then=b"", timeout=10):
    """Seconds from starting argv on a fresh pty until its first output
    byte. `send` is typed right after the start, `then` after that first
    byte (a detach sequence); the command must end by itself after it."""
    master, slave = pty.openpty()
    # Raw, so what is typed is not echoed by this pty itself: every byte
    # read back came through the command.
    tty.setraw(slave)
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                             start_new_session=True)
        os.close(slave)
        slave = -1
        if send:
            os.write(master, send)
        ready, _, _ = select.select([master], [], [], timeout)
        dt = time.perf_counter() - t0
        if not ready:
            p.kill()
            p.wait()
            raise RuntimeError(f"{' '.join(argv)}: no output in {timeout} s")
        if then:
            os.write(master, then)
        # Drain until the command ends (EIO once no one holds the slave).
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    if not os.read(master, 4096):
                        break
                except OSError:
                    break
            elif p.poll() is not None:
                break
        try:
            code = p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise RuntimeError(f"{' '.join(argv)}: did not end")
        if code not in (0, None):
            raise RuntimeError(f"{' '.join(argv)}: exit {code}")
        return dt
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def exec_tty(rt, cid):
    """`exec -t` of an echo into a running container."""
    return first_byte(rt.argv("exec", "-t", cid, "/bin/busybox", "echo", "x"))


# Ctrl-P Ctrl-Q, rt attach's detach keys.
DETACH = b"\x10\x11"


def attach(rt, cid):
    """`rt attach` to a terminal container running a shell: a return
    typed at once, until the shell's answer comes back; then detach."""
    return first_byte(rt.argv("attach", cid), send=b"\r", then=DETACH)
