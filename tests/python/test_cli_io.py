"""Regression tests of the `gram` command's file layer (issue 12, section 3).

Where outputs go (a device, FIFO or /dev/fd/N is written through and never replaced; a symbolic
link is followed to its target; a failed run leaves every output as it was), Ctrl-C while an input
is still being read, inputs refused before they are read whole, usage errors that need no data,
and the .npy dtypes numpy writes. Every test runs the built binary (conftest.py: $GRAM_CLI).

Safety: nothing here writes to the real /dev/null or /dev/stdout or reads /dev/zero before the
binary has shown, on a harmless stand-in, that it does the right thing (a node made with mknod in
the test's directory, /dev/fd/1, a pipe of zeros that stays open), so a stale binary run against
these tests fails them without deleting a system file or eating the machine's memory.
"""
import io
import os
import pathlib
import re
import signal
import stat
import subprocess
import threading
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FAITHFUL = REPO / "data" / "faithful.csv"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ---- helpers ---------------------------------------------------------------------------------


def _sigint(disposition):
    """preexec_fn giving the child SIGINT's default action (or ignoring it), whatever this test
    process inherited: a suite run as a background job (SIGINT ignored) must test the same thing."""
    def pre():
        signal.signal(signal.SIGINT, disposition)
    return pre


def run(cli, *args, stdin=None, cwd=None, env=None, timeout=120, stdout=subprocess.PIPE):
    return subprocess.run([cli, *[str(a) for a in args]], input=stdin, stdout=stdout, stderr=subprocess.PIPE,
                          timeout=timeout, cwd=cwd, env=env, preexec_fn=_sigint(signal.SIG_DFL))


def ok(cli, *args, **kw):
    p = run(cli, *args, **kw)
    assert p.returncode == 0, f"exit {p.returncode}; stderr:\n{p.stderr.decode(errors='replace')}"
    return p


def popen(cli, *args, sigint=signal.SIG_DFL, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([cli, *[str(a) for a in args]], preexec_fn=_sigint(sigint), **kw)


def finish(proc, timeout):
    """(returncode, stdout, stderr) of proc within timeout seconds; a process still running then
    is killed and the test fails (what a stale binary that blocks would do)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"gram still running after {timeout} s")
    return proc.returncode, out or b"", (err or b"").decode(errors="replace")


def names(d):
    return sorted(p.name for p in pathlib.Path(d).iterdir())


def reference_csv(cli, tmp_path, *args):
    """What `gram kde FAITHFUL ARGS -o ref.csv` writes to a regular file."""
    ref = tmp_path / "ref.csv"
    ok(cli, "kde", FAITHFUL, "-q", *args, "-o", ref)
    data = ref.read_bytes()
    ref.unlink()
    return data


class FifoReader(threading.Thread):
    """Reads a FIFO to its end in the background (opening it blocks until the writer comes)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.data = path, None
        self.start()

    def run(self):
        with open(self.path, "rb") as f:
            self.data = f.read()


class FifoWriter(threading.Thread):
    def __init__(self, path, data):
        super().__init__(daemon=True)
        self.path, self.data = path, data
        self.start()

    def run(self):
        with open(self.path, "wb") as f:
            f.write(self.data)


def char_device(tmp_path):
    """A character device node like /dev/null (1, 3) inside tmp_path when this process may make one
    (root), else the real /dev/null, which an unprivileged process cannot replace or delete."""
    if IS_ROOT:
        node = tmp_path / "null"
        try:
            os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            return node
        except OSError:
            pass
    return pathlib.Path("/dev/null")


def gp_model(cli, tmp_path):
    X = np.linspace(0, 6, 25)
    d = tmp_path / "d.csv"
    d.write_text("x,y\n" + "".join(f"{float(x)!r},{float(np.sin(x))!r}\n" for x in X))
    m = tmp_path / "m.gp"
    ok(cli, "gp", "fit", d, "--target", "y", "--kernel", "rbf(1) + white(0.01)", "-o", m, "-q")
    q = tmp_path / "q.csv"
    q.write_text("x\n0.5\n1.5\n2.5\n")
    return d, m, q


# ---- outputs -----------------------------------------------------------------------------------


def test_output_to_a_fifo_is_written_through(gram_cli, tmp_path):
    want = reference_csv(gram_cli, tmp_path)
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    ok(gram_cli, "kde", FAITHFUL, "-q", "-o", fifo, timeout=60)
    reader.join(30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    assert reader.data == want
    assert names(tmp_path) == ["out.csv"], "no temporary file"


def test_output_to_a_character_device_is_written_through(gram_cli, tmp_path):
    dev = char_device(tmp_path)
    before = os.lstat(dev)
    for args in (["kde", FAITHFUL, "-q", "-o", dev],
                 ["kde", FAITHFUL, "-q", "-o", tmp_path / "d.csv", "--plot", dev],
                 ["sample", FAITHFUL, "-n", "5", "-q", "-o", dev]):
        ok(gram_cli, *args)
        after = os.lstat(dev)
        assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino, \
            f"{dev} was replaced by {args}"
    d, m, q = gp_model(gram_cli, tmp_path)
    ok(gram_cli, "gp", "fit", d, "--target", "y", "--kernel", "rbf(1)", "-o", dev, "-q")
    ok(gram_cli, "gp", "predict", m, q, "--std", "-o", dev)
    assert os.lstat(dev).st_ino == before.st_ino
    assert not [n for n in names(tmp_path) if ".tmp." in n]


def test_a_failed_plot_leaves_a_device_output_alone(gram_cli, tmp_path):
    """The old all-or-nothing removed the main output with unlink(2) when the plot failed: as root,
    -o /dev/null --plot no/dir/p.svg deleted /dev/null. Now the outputs are staged and committed
    together, and nothing is removed that the run did not create."""
    dev = char_device(tmp_path)
    ino = os.lstat(dev).st_ino
    p = run(gram_cli, "kde", FAITHFUL, "-q", "-o", dev, "--plot", tmp_path / "no" / "p.svg")
    assert p.returncode == 1, p.stderr
    assert os.path.lexists(dev) and os.lstat(dev).st_ino == ino


def test_a_failed_plot_leaves_a_symlinked_output_alone(gram_cli, tmp_path):
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to("target.csv")
    p = run(gram_cli, "kde", FAITHFUL, "-q", "-o", link, "--plot", tmp_path / "no" / "p.svg")
    assert p.returncode == 1
    assert link.is_symlink() and target.read_text() == "old\n"
    assert names(tmp_path) == ["link.csv", "target.csv"]


def test_output_through_a_symlink_replaces_the_target_and_keeps_the_link(gram_cli, tmp_path):
    want = reference_csv(gram_cli, tmp_path)
    sub = tmp_path / "sub"
    sub.mkdir()
    target = tmp_path / "target.csv"
    target.write_text("old\n")
    link = sub / "link.csv"
    link.symlink_to("../target.csv")  # relative to the link's directory, not the working one
    ok(gram_cli, "kde", FAITHFUL, "-q", "-o", link)
    assert link.is_symlink() and os.readlink(link) == "../target.csv"
    assert target.read_bytes() == want
    assert names(tmp_path) == ["sub", "target.csv"] and names(sub) == ["link.csv"]


def test_output_through_a_dangling_symlink_creates_the_target(gram_cli, tmp_path):
    want = reference_csv(gram_cli, tmp_path)
    link = tmp_path / "link.npy"
    link2 = tmp_path / "link2.npy"
    link.symlink_to("link2.npy")
    link2.symlink_to("made.npy")  # a chain ending in a name that does not exist yet
    ok(gram_cli, "kde", FAITHFUL, "-q", "-o", link)
    assert link.is_symlink() and link2.is_symlink()
    got = np.load(tmp_path / "made.npy")
    ref = np.loadtxt(io.BytesIO(want), skiprows=1)
    assert np.array_equal(got.ravel(), ref)
    assert names(tmp_path) == ["link.npy", "link2.npy", "made.npy"]


def test_a_symlink_loop_is_an_error(gram_cli, tmp_path):
    (tmp_path / "a.csv").symlink_to("b.csv")
    (tmp_path / "b.csv").symlink_to("a.csv")
    p = run(gram_cli, "kde", FAITHFUL, "-q", "-o", tmp_path / "a.csv")
    assert p.returncode == 1 and re.search(r"a\.csv: .*(symbolic links|loop)", p.stderr.decode(), re.I), p.stderr
    assert names(tmp_path) == ["a.csv", "b.csv"]


def test_output_onto_a_directory_is_refused(gram_cli, tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    p = run(gram_cli, "kde", FAITHFUL, "-q", "-o", d)
    assert p.returncode == 1
    assert re.search(r"^gram: .*adir: is a directory", p.stderr.decode(), re.M), p.stderr
    assert names(tmp_path) == ["adir"] and names(d) == []


@pytest.mark.skipif(IS_ROOT, reason="root may write into a read-only directory: nothing to refuse")
def test_output_in_a_read_only_directory_leaves_the_old_file(gram_cli, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    old = d / "out.csv"
    old.write_text("old\n")
    d.chmod(0o555)
    try:
        p = run(gram_cli, "kde", FAITHFUL, "-q", "-o", old)
        assert p.returncode == 1
        assert re.search(r"out\.csv: cannot create a temporary file next to it: Permission denied",
                         p.stderr.decode()), p.stderr
        assert old.read_text() == "old\n" and names(d) == ["out.csv"]
    finally:
        d.chmod(0o755)


def test_dev_fd_output_writes_to_the_descriptor_and_keeps_appending(gram_cli, tmp_path):
    """/dev/fd/1 (like /dev/stdout, -o - and /proc/self/fd/1) is the descriptor the shell set up:
    written to directly, so `>> log` keeps appending and nothing is created beside it."""
    want = reference_csv(gram_cli, tmp_path)
    log = tmp_path / "log.csv"
    log.write_bytes(b"old\n")
    with open(log, "ab") as f:
        p = run(gram_cli, "kde", FAITHFUL, "-q", "-o", "/dev/fd/1", stdout=f)
    assert p.returncode == 0, p.stderr
    assert log.read_bytes() == b"old\n" + want
    assert names(tmp_path) == ["log.csv"]
    # a descriptor that is not open for writing is an error naming it
    p = run(gram_cli, "kde", FAITHFUL, "-q", "-o", "/dev/fd/0", stdin=b"")
    assert p.returncode == 1 and "/dev/fd/0" in p.stderr.decode()


def test_model_through_fifos(gram_cli, tmp_path):
    """gp fit -o FIFO writes the model through; gp predict reads it back from a FIFO (read once:
    the kind check that re-reads a file is for regular files only)."""
    d, m, q = gp_model(gram_cli, tmp_path)
    ref = ok(gram_cli, "gp", "predict", m, q, "--std").stdout
    fifo = tmp_path / "m.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    ok(gram_cli, "gp", "fit", d, "--target", "y", "--kernel", "rbf(1) + white(0.01)", "-o", fifo, "-q", timeout=60)
    reader.join(30)
    assert reader.data == m.read_bytes()
    writer = FifoWriter(fifo, reader.data)
    assert ok(gram_cli, "gp", "predict", fifo, q, "--std", timeout=60).stdout == ref
    writer.join(30)
    writer = FifoWriter(fifo, reader.data)
    p = run(gram_cli, "krr", "predict", fifo, q, timeout=60)
    writer.join(30)
    assert p.returncode == 1 and re.search(r"m\.fifo: is a gp model, expected krr", p.stderr.decode()), p.stderr


# ---- Ctrl-C while reading --------------------------------------------------------------------------


def test_sigint_while_waiting_for_a_fifo_writer(gram_cli, tmp_path):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    proc = popen(gram_cli, "kde", fifo, "-o", tmp_path / "out.csv", cwd=tmp_path)
    time.sleep(0.5)
    assert proc.poll() is None
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    rc, out, err = finish(proc, 10)
    assert rc == 130, err
    assert time.time() - t0 < 5
    assert "gram: interrupted" in err and out == b""
    assert names(tmp_path) == ["in.csv"]


@pytest.mark.parametrize("cmd", ["kde", "gp-predict"])
def test_sigint_while_a_slow_pipe_trickles(gram_cli, tmp_path, cmd):
    if cmd == "kde":
        args, head = ["kde", "-", "-o", tmp_path / "out.npy"], b"x,y\n1,2\n3,4\n"
    else:
        d, m, q = gp_model(gram_cli, tmp_path)
        args, head = ["gp", "predict", "-", q, "-o", tmp_path / "out.npy"], m.read_bytes()[:100]
    before = names(tmp_path)
    proc = popen(gram_cli, *args, stdin=subprocess.PIPE)
    proc.stdin.write(head)
    proc.stdin.flush()
    time.sleep(0.5)
    assert proc.poll() is None
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    try:  # the pipe stays open: communicate() would close it, and the end of input is no test
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    proc.stdin.close()
    proc.stdin = None
    rc, out, err = finish(proc, 10)
    assert rc == 130, err
    assert time.time() - t0 < 5
    assert "gram: interrupted" in err and out == b""
    assert names(tmp_path) == before


def test_an_ignored_sigint_stays_ignored(gram_cli, tmp_path):
    """A shell starts background jobs with SIGINT ignored; gram keeps it so: the Ctrl-C meant for
    the foreground job neither cancels nor kills it, and the job finishes."""
    want = reference_csv(gram_cli, tmp_path)
    text = FAITHFUL.read_bytes()
    proc = popen(gram_cli, "kde", "-", "-q", sigint=signal.SIG_IGN, stdin=subprocess.PIPE)
    proc.stdin.write(text[:100])
    proc.stdin.flush()
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.stdin.write(text[100:])
    proc.stdin.close()
    proc.stdin = None  # closed: communicate() has nothing to send
    rc, out, err = finish(proc, 60)
    assert rc == 0, err
    assert out == want


# ---- inputs refused before they are read whole -----------------------------------------------------


def _open_pipe_of_zeros(n):
    """A pipe holding n zero bytes whose write end stays open: a reader that waits for the end
    of the input never returns."""
    r, w = os.pipe()
    os.write(w, b"\0" * n)
    return r, w


@pytest.mark.parametrize("cmd", ["kde", "gp-predict"])
def test_zeros_are_refused_without_reading_to_the_end(gram_cli, tmp_path, cmd):
    """`gram gp predict /dev/zero q.csv` grew to 6.8 GB in 10 s: the model's magic string is
    checked after 8 bytes, and CSV text stops at its first NUL. Shown first on a pipe of zeros that
    never ends (safe for a stale binary: it just blocks), then on /dev/zero itself."""
    d, m, q = gp_model(gram_cli, tmp_path)
    args = ["kde", "-"] if cmd == "kde" else ["gp", "predict", "-", q]
    needle = r"<stdin>: byte 1 is NUL: not CSV text" if cmd == "kde" else r"<stdin>: not a gram model file"
    r, w = _open_pipe_of_zeros(4096)
    try:
        proc = popen(gram_cli, *args, stdin=r)
        rc, out, err = finish(proc, 20)
    finally:
        os.close(r)
        os.close(w)
    assert rc == 1 and re.search(needle, err), err
    args = ["kde", "/dev/zero"] if cmd == "kde" else ["gp", "predict", "/dev/zero", q]
    p = run(gram_cli, *args, timeout=20)
    assert p.returncode == 1 and re.search(needle.replace("<stdin>", "/dev/zero"), p.stderr.decode()), p.stderr


def test_a_large_sparse_file_of_zeros_is_refused_at_once(gram_cli, tmp_path):
    """A file of 2^40 zero bytes (sparse: it takes no disk) is not a model and not CSV: refused
    from its first bytes, before anything of its size is allocated or read."""
    big = tmp_path / "zeros.bin"
    try:
        with open(big, "wb") as f:
            f.truncate(1 << 40)
    except OSError as e:  # a file system without sparse files this large
        pytest.skip(f"no sparse 1 TiB file here: {e}")
    d, m, q = gp_model(gram_cli, tmp_path)
    t0 = time.time()
    p = run(gram_cli, "gp", "predict", big, q, timeout=60)
    assert p.returncode == 1 and re.search(r"zeros\.bin: not a gram model file", p.stderr.decode()), p.stderr
    p = run(gram_cli, "kde", big, timeout=60)
    assert p.returncode == 1 and re.search(r"zeros\.bin: .*(NUL|limit)", p.stderr.decode()), p.stderr
    assert time.time() - t0 < 20


def test_input_limit(gram_cli, tmp_path):
    """GRAM_MAX_INPUT caps what one input may take: a stream is refused as soon as it passes the
    limit, a file by its size, and a .npy by its values as float64."""
    env = dict(os.environ, GRAM_MAX_INPUT="20000")
    body = b"x,y\n" + b"".join(b"%d.5,%d.5\n" % (i % 10, i % 7) for i in range(5000))  # 40 kB
    p = run(gram_cli, "kde", "-", "-q", stdin=body, env=env)
    assert p.returncode == 1 and "<stdin>: input is larger than the limit of 20000 bytes" in p.stderr.decode()
    (tmp_path / "big.csv").write_bytes(body)
    p = run(gram_cli, "kde", tmp_path / "big.csv", "-q", env=env)
    assert p.returncode == 1 and re.search(r"big\.csv: input is larger than the limit of 20000 bytes",
                                           p.stderr.decode())
    np.save(tmp_path / "i8.npy", np.ones((4000, 1), dtype=np.int8))  # 4 kB on disk, 32 kB as float64
    p = run(gram_cli, "kde", tmp_path / "i8.npy", "-q", env=env)
    assert p.returncode == 1 and re.search(r"i8\.npy: .*needs 32000 bytes as float64, more than the limit",
                                           p.stderr.decode()), p.stderr
    ok(gram_cli, "kde", "-", "-q", stdin=body[:4 + 8 * 1000], env=env)
    for bad in ["0", "-5", "lots", "1e9"]:
        p = run(gram_cli, "kde", FAITHFUL, "-q", env=dict(os.environ, GRAM_MAX_INPUT=bad))
        assert p.returncode == 2 and "GRAM_MAX_INPUT" in p.stderr.decode()


def test_csv_read_error_names_file_line_and_column(gram_cli, tmp_path):
    (tmp_path / "t.csv").write_bytes(b"a,b\n1,2\n3,x4\n")
    p = run(gram_cli, "kde", tmp_path / "t.csv")
    assert re.search(r"t\.csv: line 3, column 2: \"x4\" is not a number", p.stderr.decode()), p.stderr
    (tmp_path / "z.csv").write_bytes(b"a,b\n1,2\n3\x004\n")
    p = run(gram_cli, "kde", tmp_path / "z.csv")
    assert p.returncode == 1 and re.search(r"z\.csv: byte 10 is NUL", p.stderr.decode()), p.stderr


# ---- .npy dtypes --------------------------------------------------------------------------------


def _dtype_data(dt, rng):
    dt = np.dtype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, (60, 2)).astype(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(int(info.min), -100), min(int(info.max), 100)
        return rng.integers(lo, hi, (60, 2), endpoint=True).astype(dt)
    x = rng.standard_normal((60, 2)) * 3
    if dt.itemsize == 16:
        x = x.astype(dt) + np.asarray(1e-19, dt) * rng.standard_normal((60, 2)).astype(dt)  # below double's ulp
    return x.astype(dt)


@pytest.mark.parametrize("dt", ["?", "i1", "u1", "<i2", ">u2", "<i4", ">i4", "<u4", "<i8", ">u8",
                                "<f2", ">f2", "<f4", ">f8", "longdouble"])
def test_npy_dtypes_numpy_writes(gram_cli, tmp_path, dt):
    """Every real dtype is read as numpy's astype(float64) gives it: the outputs are bit-identical
    to those for the float64 copy."""
    x = _dtype_data(dt, np.random.default_rng(sum(map(ord, dt))))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "x64.npy", x.astype(np.float64))
    np.save(tmp_path / "xf.npy", np.asfortranarray(x))
    want = ok(gram_cli, "kde", tmp_path / "x64.npy", "--bandwidth", "1.5", "-q").stdout
    assert ok(gram_cli, "kde", tmp_path / "x.npy", "--bandwidth", "1.5", "-q").stdout == want
    assert ok(gram_cli, "kde", tmp_path / "xf.npy", "--bandwidth", "1.5", "-q").stdout == want
    with open(tmp_path / "x.npy", "rb") as f:  # and as a stream
        assert ok(gram_cli, "kde", "-", "--bandwidth", "1.5", "-q", stdin=f.read()).stdout == want


def test_npy_non_finite_half_and_longdouble_name_row_and_column(gram_cli, tmp_path):
    x = np.ones((5, 2), dtype=np.float16)
    x[3, 1] = np.inf
    np.save(tmp_path / "h.npy", x)
    p = run(gram_cli, "kde", tmp_path / "h.npy")
    assert p.returncode == 1 and re.search(r"h\.npy: row 4, column 2 \(x2\) is \+Inf", p.stderr.decode())
    y = np.ones((5, 1), dtype=np.longdouble)
    y[2, 0] = np.longdouble("1e400")  # finite in long double, beyond double: +Inf as float64
    np.save(tmp_path / "l.npy", y)
    p = run(gram_cli, "kde", tmp_path / "l.npy")
    assert p.returncode == 1 and re.search(r"l\.npy: row 3, column 1 \(x1\) is \+Inf", p.stderr.decode())


@pytest.mark.parametrize("dt", ["<c16", "<c8", "<U3", "<M8[s]", "|S2"])
def test_npy_other_dtypes_are_refused_by_name(gram_cli, tmp_path, dt):
    x = np.zeros((4, 2), dtype=dt)
    np.save(tmp_path / "c.npy", x)
    p = run(gram_cli, "kde", tmp_path / "c.npy")
    err = p.stderr.decode()
    assert p.returncode == 1 and "c.npy" in err and np.dtype(dt).str in err, err
    assert ("complex" in err) == (np.dtype(dt).kind == "c")


# ---- usage errors need no data ---------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["kde", "nope.csv", "--kernel", "epanechnikov", "--bandwidth", "cv-ls"],
    ["kde", "nope.csv", "-o", "out.txt"],
    ["sample", "nope.csv", "-n", "3", "-o", "out.npz"],
    ["gp", "fit", "nope.csv", "--target", "y", "--kernel", "rbf(", "-o", "m.gp"],
    ["krr", "fit", "nope.csv", "--target", "y", "--kernel", "frobnicate(1)", "-o", "m.krr"],
    ["gp", "predict", "nope.gp", "nope.csv", "-o", "p.txt"],
])
def test_data_free_usage_errors_come_before_reading(gram_cli, tmp_path, args):
    """The inputs do not exist: a data error (1) would mean they were opened first."""
    p = run(gram_cli, *args, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "nope" not in p.stderr.decode()
    assert names(tmp_path) == []


def test_help_says_what_is_true(gram_cli):
    out = ok(gram_cli, "--help").stdout.decode()
    for needle in ["float16", "longdouble", "bool", "FILE.npy, FILE.csv", "written through",
                   "GRAM_MAX_INPUT", "2 usage error"]:
        assert needle in out, needle
    for cmd in (["kde"], ["sample"], ["gp", "predict"], ["gp", "sample"], ["krr", "predict"]):
        out = ok(gram_cli, *cmd, "--help").stdout.decode()
        assert re.search(r"FILE\.npy .*FILE\.csv, or a name with no\s+suffix", out, re.S), (cmd, out)
