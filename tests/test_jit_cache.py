"""Numba's on-disk cache of the compiled kernels (``cache=True``), in child processes.

Every scenario runs the same small fit (LinearRegression, dense float64, SGD with
batches of one row: it compiles only ``_sgd_epoch``, ``_order_in_range`` and
``_unit_weights``, about 3.5 s) in child processes, each with its own
``NUMBA_CACHE_DIR``, and compares a hash of ``coef_`` with the reference child's (the
first, compiling into an empty directory). The children also report how many kernels
they loaded from the cache and how many they compiled (the dispatchers' ``stats``).

What Numba (0.68, ``numba/core/caching.py``) does, and so what is asserted here:

- concurrent writers are safe: every index and data file is written to a temporary name
  and renamed into place (``IndexDataCacheFile._open_for_write``);
- a damaged cache is not survived: ``_load_index`` and ``_load_data`` unpickle the files
  and catch nothing but a missing file, so a truncated or overwritten ``.nbi``/``.nbc``
  makes every later load raise an ``UnpicklingError`` that names neither the file nor
  the directory to delete. fastgd's Numba entry points re-raise it as
  ``DamagedCacheError`` naming the cache directory (``fastgd/_numba/_cache.py``). The
  tests accept a recompile with the reference bits or a message naming the directory,
  and check that the error came from Numba's unpickling of that file;
- an unwritable cache directory is passed over without a warning, even one holding a
  valid cache: the locator for ``NUMBA_CACHE_DIR`` is only taken if a temporary file
  can be created there (``_CacheLocator.ensure_cache_path``), else the next one is
  (``fastgd/_numba/__pycache__``, then the user-wide cache);
- the index is keyed on the target machine (``codegen.magic_tuple()``: the LLVM triple,
  the CPU name, the CPU features), so entries from another CPU are never loaded: the
  kernels are compiled again and added to the index under this machine's key.
"""

import glob
import json
import os
import pickle
import shutil
import subprocess
import sys
import time

import pytest

numba = pytest.importorskip("numba")

# compiling into empty caches in child processes takes minutes on 2 cores: the full tier
# (pytest --full), which CI runs
pytestmark = [pytest.mark.skipif(numba.config.DISABLE_JIT, reason="about the JIT's cache"), pytest.mark.full]

CHILD = r"""
import hashlib, json, os, sys, time, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import numba
    from numba.core.registry import cpu_target
    from fastgd import LinearRegression
    import fastgd._numba.kernels as nk
    go = os.environ.get("FASTGD_TEST_GO")
    if go:  # start compiling together with the other children
        open(go + "." + str(os.getpid()), "w").close()
        while not os.path.exists(go):
            time.sleep(0.002)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = X @ np.arange(1.0, 6.0) + 0.1 * rng.standard_normal(200)
    est = LinearRegression(backend="numba", batch_size=1, max_iter=3, tol=None, random_state=0).fit(X, y)
used = [f for f in vars(nk).values() if isinstance(f, numba.core.dispatcher.Dispatcher) and f.signatures]
stats = [f.stats for f in used]
print(json.dumps({
    "hash": hashlib.sha256(est.coef_.tobytes()).hexdigest(),
    "hits": sum(sum(s.cache_hits.values()) for s in stats),
    "misses": sum(sum(s.cache_misses.values()) for s in stats),
    "cache_paths": sorted({s.cache_path for s in stats}),
    "magic": list(cpu_target.target_context.codegen().magic_tuple()),
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
}))
"""

TIMEOUT = 300


def child_env(cache_dir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(NUMBA_CACHE_DIR=str(cache_dir), **extra)
    return env


def finish(proc_or_result):
    """The child's report (a dict), or its error: ``(returncode, stderr)``."""
    out, err, rc = proc_or_result.stdout, proc_or_result.stderr, proc_or_result.returncode
    if rc == 0:
        return json.loads(out.strip().splitlines()[-1])
    return rc, err


def run_children(cache_dirs, prefixes=None):
    """Run one child per cache directory, all at once; their reports in order. A prefix
    is a command the child's interpreter runs under (none by default)."""
    prefixes = prefixes or [()] * len(cache_dirs)
    procs = [subprocess.Popen([*prefix, sys.executable, "-c", CHILD], env=child_env(d),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d, prefix in zip(cache_dirs, prefixes, strict=True)]
    try:
        outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [finish(subprocess.CompletedProcess(p.args, p.returncode, *out)) for p, out in zip(procs, outputs)]


def run_child(cache_dir):
    return run_children([cache_dir])[0]


def succeeded(report):
    assert isinstance(report, dict), f"the child failed (exit {report[0]}):\n{report[1][-3000:]}"
    return report


def cache_files(cache_dir, pattern):
    return sorted(glob.glob(os.path.join(str(cache_dir), "*", pattern)))


def read_index(path):
    """A ``.nbi`` file: Numba's version, then the pickled (source stamp, {key: data file})
    where key = (signature, codegen.magic_tuple(), code hashes)."""
    with open(path, "rb") as f:
        version = pickle.load(f)
        stamp, overloads = pickle.loads(f.read())
    return version, stamp, overloads


def write_index(path, version, stamp, overloads):
    """As ``IndexDataCacheFile._save_index`` writes it."""
    from numba.core.serialize import dumps

    with open(path, "wb") as f:
        pickle.dump(version, f, protocol=-1)
        f.write(dumps((stamp, overloads)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference child: compiles into an empty cache directory. Returns its report
    and that directory (a complete cache, copied by the scenarios that damage one)."""
    seed = tmp_path_factory.mktemp("seed-cache")
    report = succeeded(run_child(seed))
    assert report["misses"] >= 2 and report["hits"] == 0  # it compiled
    assert len(cache_files(seed, "*.nbi")) >= 2 and len(cache_files(seed, "*.nbc")) >= 2
    return report, seed


def copy_of(seed, directory):
    target = directory / "cache"
    shutil.copytree(seed, target)
    return target


# ----------------------------------------------------------------------------- concurrency
def test_three_processes_compiling_into_one_empty_cache_then_one_loading(reference, tmp_path):
    """Three children start compiling into one empty NUMBA_CACHE_DIR at the same moment
    (each waits, imports done, for a file the test creates once all three are ready):
    all three give the reference bits and leave a consistent cache (no temporary file,
    one entry per index, this machine's), from which a fourth child loads every kernel,
    compiling none, and gives the same bits."""
    ref, _ = reference
    cache = tmp_path / "cache"
    cache.mkdir()
    go = str(tmp_path / "go")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], env=child_env(cache, FASTGD_TEST_GO=go),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(glob.glob(go + ".*")) < 3:  # all three imported, none compiling yet
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a child ended early"
            time.sleep(0.01)
        open(go, "w").close()
        outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
        done = [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    reports = [succeeded(finish(d)) for d in done]
    assert [r["hash"] for r in reports] == [ref["hash"]] * 3
    assert sum(r["misses"] for r in reports) >= 2  # they compiled (some may load what another saved)
    assert not glob.glob(os.path.join(str(cache), "*", "*.tmp.*"))  # no half-written file left
    for index in cache_files(cache, "*.nbi"):  # one entry each, this machine's
        _, _, overloads = read_index(index)
        assert [key[1] for key in overloads] == [tuple(ref["magic"])], index
    fourth = succeeded(run_child(cache))
    assert fourth["hash"] == ref["hash"]
    assert fourth["misses"] == 0 and fourth["hits"] >= 2  # loaded, compiled nothing
    assert fourth["cache_paths"] == [os.path.dirname(cache_files(cache, "*.nbi")[0])]


# ----------------------------------------------------------------------------- one process each
# The scenarios below each run one child on a prepared cache directory; the children
# run together (in the ``runs`` fixture) and each test then checks its own.

DAMAGES = [(kind, how) for kind in ("nbc", "nbi") for how in ("truncated", "overwritten")]


def damage(path, how):
    if how == "truncated":
        os.truncate(path, os.path.getsize(path) // 2)
    else:  # the first 16 bytes (the pickle's header) overwritten
        with open(path, "r+b") as f:
            f.write(b"\x00" * 16)


# Root ignores the mode bits through two capabilities; a process started without them
# (setpriv, util-linux) is bound by them as any user is.
NO_DAC_OVERRIDE = ("setpriv", "--bounding-set=-dac_override,-dac_read_search",
                   "--inh-caps=-dac_override,-dac_read_search")


def can_create_a_file_in(directory, prefix=()):
    probe = os.path.join(str(directory), ".probe")
    code = f"open({probe!r}, 'w').close()"
    done = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    if done.returncode == 0:
        os.unlink(probe)
        return True
    return False


FOREIGN = ("another-cpu", "+fastgd-test-feature")  # the CPU name and features claimed


def prepare_damaged(seed, directory, kind, how):
    cache = copy_of(seed, directory)
    paths = cache_files(cache, "*." + kind)
    assert paths
    for path in paths:
        damage(path, how)
    return {"cache": cache}, ()


def prepare_chmod(seed, directory):
    """A complete cache made read-only with chmod 0o555 (its directory and the package's
    subdirectory in it), which the child must be unable to write to (tried). Root can,
    as it ignores the mode bits: then the child runs under setpriv without
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, which makes them apply to it."""
    cache = copy_of(seed, directory)
    (subdir,) = glob.glob(os.path.join(str(cache), "*"))  # this package's files
    for path in (subdir, cache):
        os.chmod(path, 0o555)
    context = {"cache": cache, "subdir": subdir, "before": sorted(os.listdir(subdir)), "skip": None}
    prefix = ()
    if can_create_a_file_in(subdir):
        if shutil.which("setpriv") is None or can_create_a_file_in(subdir, NO_DAC_OVERRIDE):
            context["skip"] = ("chmod 0o555 leaves the directory writable for this user (root) and "
                               "setpriv cannot drop CAP_DAC_OVERRIDE here")
        prefix = NO_DAC_OVERRIDE
    return context, prefix


def prepare_under_a_file(seed, directory):
    """NUMBA_CACHE_DIR = ``<a regular file>/cache``: no one, root included, can create it."""
    blocker = directory / "a-file"
    blocker.write_text("")
    return {"cache": blocker / "cache", "blocker": blocker}, ()


def prepare_foreign(seed, directory, here):
    """A complete cache whose index entries all claim another CPU: the key's
    ``magic_tuple()`` (triple, CPU name, features) with the name and features replaced."""
    cache = copy_of(seed, directory)
    foreign = (here[0], *FOREIGN)
    for index in cache_files(cache, "*.nbi"):
        version, stamp, overloads = read_index(index)
        assert {key[1] for key in overloads} == {here}
        write_index(index, version, stamp, {(sig, foreign, code): name for (sig, _, code), name in overloads.items()})
    data_before = {}
    for path in cache_files(cache, "*.nbc"):
        with open(path, "rb") as f:
            data_before[path] = f.read()
    return {"cache": cache, "foreign": foreign, "data_before": data_before}, ()


@pytest.fixture(scope="module")
def runs(reference, tmp_path_factory):
    """{scenario: (context, child's report)}, the children run together (each imports
    and then loads, fails, or compiles: 2.5 to 6 s)."""
    ref, seed = reference
    here = tuple(ref["magic"])
    prepared = {}
    for kind, how in DAMAGES:
        prepared[kind, how] = prepare_damaged(seed, tmp_path_factory.mktemp(f"{kind}-{how}"), kind, how)
    prepared["chmod-0555"] = prepare_chmod(seed, tmp_path_factory.mktemp("chmod"))
    prepared["under-a-regular-file"] = prepare_under_a_file(seed, tmp_path_factory.mktemp("under-a-file"))
    prepared["foreign"] = prepare_foreign(seed, tmp_path_factory.mktemp("foreign"), here)
    names = [n for n in prepared if not (n == "chmod-0555" and prepared[n][0]["skip"])]
    try:
        reports = run_children([prepared[n][0]["cache"] for n in names], [prepared[n][1] for n in names])
    finally:
        chmod = prepared["chmod-0555"][0]
        for path in (chmod["cache"], chmod["subdir"]):
            os.chmod(path, 0o755)
    return {n: (prepared[n][0], r) for n, r in zip(names, reports)} | (
        {} if "chmod-0555" in names else {"chmod-0555": (prepared["chmod-0555"][0], None)})


# ----------------------------------------------------------------------------- damaged files
# what Numba 0.68 raises, and where (numba/core/caching.py): nothing there catches it
NUMBA_RAISES = {
    ("nbc", "truncated"): ("_load_data", "_pickle.UnpicklingError: pickle data was truncated"),
    ("nbc", "overwritten"): ("_load_data", "_pickle.UnpicklingError: invalid load key, '\\x00'."),
    ("nbi", "truncated"): ("_load_index", "_pickle.UnpicklingError: pickle data was truncated"),
    ("nbi", "overwritten"): ("_load_index", "_pickle.UnpicklingError: invalid load key, '\\x00'."),
}


@pytest.mark.parametrize("kind,how", DAMAGES, ids=[f"{'data' if k == 'nbc' else 'index'}-files-{h}" for k, h in DAMAGES])
def test_a_damaged_cache_file(reference, runs, kind, how):
    """Every ``.nbc`` (or every ``.nbi``) of a complete cache truncated to half its size,
    or its first 16 bytes overwritten with zeros. Acceptable: the fit succeeds with the
    reference bits (recompiled), or fails with a message naming the cache directory to
    delete: with Numba 0.68, the second (``DamagedCacheError``)."""
    ref, _ = reference
    context, report = runs[kind, how]
    if isinstance(report, dict):
        assert report["hash"] == ref["hash"]
        assert report["misses"] >= 1  # recompiled what it could not load
        return
    rc, stderr = report
    assert rc == 1, stderr[-3000:]  # a Python exception, not a crash
    lines = stderr.strip().splitlines()
    # the message says what to delete ...
    assert lines[-1].startswith("fastgd._numba._cache.DamagedCacheError: "), stderr[-3000:]
    assert f"Delete the directory {context['cache']}" in lines[-1], stderr[-3000:]
    # ... and the cause is Numba's failed load of the damaged file
    where, message = NUMBA_RAISES[kind, how]
    assert message in stderr, stderr[-3000:]
    assert any("numba/core/caching.py" in line and line.rstrip().endswith(where) for line in lines), stderr[-3000:]


# ----------------------------------------------------------------------------- unwritable
@pytest.mark.parametrize("how", ["chmod-0555", "under-a-regular-file"])
def test_an_unwritable_cache_directory(reference, runs, how):
    """NUMBA_CACHE_DIR where nothing can be written (see ``prepare_chmod`` and
    ``prepare_under_a_file``): the fit succeeds with the reference bits and no warning
    about the cache; Numba neither reads nor writes anything there (the read-only valid
    cache is not used) and takes its next cache location (``fastgd/_numba/__pycache__``
    where that is writable)."""
    ref, _ = reference
    context, report = runs[how]
    if context.get("skip"):
        pytest.skip(context["skip"])
    report = succeeded(report)
    assert report["hash"] == ref["hash"]
    assert not [w for w in report["warnings"] if "cach" in w.lower()], report["warnings"]  # silently
    cache = str(context["cache"])
    assert report["cache_paths"] and not any(p.startswith(cache) for p in report["cache_paths"])
    if how == "chmod-0555":
        assert sorted(os.listdir(context["subdir"])) == context["before"]
    else:
        assert context["blocker"].read_text() == "" and not os.path.exists(cache)


# ----------------------------------------------------------------------------- another CPU
def test_a_cache_copied_from_another_cpu_model_is_recompiled(reference, runs):
    """A complete cache whose index entries all claim another CPU (``prepare_foreign``):
    the fit gives the reference bits, loads nothing, compiles every kernel and adds this
    machine's entries next to the foreign ones, in new data files; the foreign data
    files are left as they were."""
    ref, _ = reference
    context, report = runs["foreign"]
    cache, foreign, here = context["cache"], context["foreign"], tuple(ref["magic"])
    report = succeeded(report)
    assert report["hash"] == ref["hash"]
    assert report["hits"] == 0 and report["misses"] >= 2  # recompiled, loaded nothing
    grew = 0
    for index in cache_files(cache, "*.nbi"):
        _, _, overloads = read_index(index)
        machines = sorted(key[1] for key in overloads)
        assert foreign in machines
        if here in machines:
            grew += 1
            assert len(set(overloads.values())) == len(overloads)  # a data file of its own
    assert grew == report["misses"]  # an entry for this machine per kernel compiled
    for path, before in context["data_before"].items():
        with open(path, "rb") as f:
            assert f.read() == before  # the foreign code was neither used up nor replaced
    assert len(cache_files(cache, "*.nbc")) == len(context["data_before"]) + grew
