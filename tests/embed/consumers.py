"""Builds tests/embed/consumer, a project outside wsx, the ways wsx's users will, and runs it:

  installed   `meson install` of this build dir into a temporary DESTDIR (nothing is rebuilt),
              then the consumer with meson (dependency('wsx', static: true): the .a files and
              their private dependencies) and with CMake (pkg_check_modules IMPORTED_TARGET:
              the shared libraries when the build made them, else the static ones).
  subproject  the consumer with wsx as a meson subproject (subprojects/wsx -> this source tree,
              --force-fallback-for=wsx), building only the targets it needs.

In the installed tree every header must compile on its own, warning-free at -Wpedantic. Each
consumer build uses this build's compilers and sanitizers (an instrumented library needs an
instrumented program) and -Werror. The consumer's embed_snippet.cpp must be the code README.md
shows.

Usage: consumers.py installed|subproject SOURCE_ROOT BUILD_ROOT VERSION SANITIZE CXX CC"""

import concurrent.futures
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77


def run(cmd, env=None, cwd=None, quiet=False):
    started = time.monotonic()
    result = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    took = time.monotonic() - started
    if not quiet or result.returncode != 0:
        print(f"$ {' '.join(cmd)}  ({took:.1f} s)", flush=True)
    if result.returncode != 0:
        print(result.stdout)
        raise SystemExit(f"FAIL: {cmd[0]} exited with {result.returncode}")
    return result.stdout


def check_snippet_in_readme(source):
    """The README's "Embed the engine in your loop" code is the file the consumer compiles."""
    snippet = open(os.path.join(source, "tests/embed/consumer/embed_snippet.cpp")).read()
    code = snippet[snippet.index("#include <sys/uio.h>"):]
    readme = open(os.path.join(source, "README.md")).read()
    if code not in readme:
        raise SystemExit("FAIL: README.md does not contain tests/embed/consumer/embed_snippet.cpp")


def sanitizer_flags(sanitize):
    return [] if sanitize in ("", "none") else [f"-fsanitize={sanitize}"]


def link_flags(sanitize, cxx):
    """A C program linking C++ code that clang instrumented for UBSan needs the C++ part of the
    UBSan runtime, which clang links only for C++ programs unless asked."""
    flags = sanitizer_flags(sanitize)
    if "undefined" in sanitize and "clang" in cxx:
        flags.append("-fsanitize-link-c++-runtime")
    return flags


def check_headers_stand_alone(dest, env):
    """Every installed header compiles on its own, warning-free, from the installed tree only:
    none leans on a header that stayed behind in src/ or on what its includer included first."""
    include = glob.glob(os.path.join(dest, "**", "include", "wsx"), recursive=True)[0]
    headers = sorted(glob.glob(os.path.join(include, "*", "*.h*")))
    started = time.monotonic()
    work = os.path.join(os.path.dirname(include), "..", "one_header")
    os.mkdir(work)

    def compile_alone(numbered):
        number, header = numbered
        c = header.endswith(".h")
        compiler = (env["CC"] if c else env["CXX"]).split()
        source = os.path.join(work, f"{number}.c" + ("" if c else "c"))
        with open(source, "w") as f:
            f.write(f'#include "{os.path.relpath(header, include)}"\n')
        run(compiler + ["-std=c99" if c else "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra",
                        "-Wpedantic", "-Werror", "-I", include, source], env=env, quiet=True)

    # Two at a time: the machine's core count, shared with whatever else runs.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(compile_alone, enumerate(headers)))
    print(f"{len(headers)} installed headers compile alone ({time.monotonic() - started:.1f} s)")


def run_consumer(build, version, env):
    print(run([os.path.join(build, "consumer"), version], env=env).strip())
    print(run([os.path.join(build, "consumer_c")], env=env).strip())


def installed(source, build, version, sanitize, env, tmp):
    link = link_flags(sanitize, env["CXX"])
    meson = shutil.which("meson")
    cmake = shutil.which("cmake")
    if meson is None or cmake is None:
        print("meson or cmake is not installed")
        return SKIP
    dest = os.path.join(tmp, "root")
    run([meson, "install", "-C", build, "--no-rebuild", "--destdir", dest, "--quiet"], env=env)
    pcs = glob.glob(os.path.join(dest, "**", "pkgconfig", "wsx.pc"), recursive=True)
    if len(pcs) != 1:
        raise SystemExit(f"FAIL: wsx.pc installed {len(pcs)} times")
    pcdir = os.path.dirname(pcs[0])
    libdir = os.path.dirname(pcdir)
    for header in ["proto/connection.hpp", "proto/handshake.hpp", "net/server.hpp",
                   "capi/wsx.h", "wsx/version.hpp"]:
        if not glob.glob(os.path.join(dest, "**", "include", "wsx", header), recursive=True):
            raise SystemExit(f"FAIL: include/wsx/{header} not installed")
    if not glob.glob(os.path.join(dest, "**", "bin", "wsx"), recursive=True):
        raise SystemExit("FAIL: bin/wsx not installed")
    check_headers_stand_alone(dest, env)
    shared = bool(glob.glob(os.path.join(libdir, "libwsx_proto.so*")))
    static = bool(glob.glob(os.path.join(libdir, "libwsx_proto.a")))
    print(f"installed: {pcdir} (static: {static}, shared: {shared})")
    # Relocatable .pc files (pkgconfig.relocatable, the default since it was set) find the
    # prefix from their own location. A build dir configured before that writes absolute ones:
    # copies with the prefix moved below DESTDIR stand in for them.
    if "prefix=${pcfiledir}" not in open(pcs[0]).read():
        moved = os.path.join(tmp, "pkgconfig")
        os.mkdir(moved)
        for pc in glob.glob(os.path.join(pcdir, "wsx*.pc")):
            text = open(pc).read()
            prefix = next(line[len("prefix="):] for line in text.splitlines()
                          if line.startswith("prefix="))
            text = text.replace("prefix=" + prefix, "prefix=" + dest + prefix, 1)
            open(os.path.join(moved, os.path.basename(pc)), "w").write(text)
        pcdir = moved
    env = dict(env, PKG_CONFIG_PATH=pcdir, LD_LIBRARY_PATH=libdir)
    flags = sanitizer_flags(sanitize)

    consumer = os.path.join(source, "tests/embed/consumer")
    if static:
        mbuild = os.path.join(tmp, "meson-static")
        run([meson, "setup", mbuild, consumer, "--buildtype=plain", "-Dstatic=true",
             f"-Db_sanitize={sanitize or 'none'}", "-Db_lundef=false"]
            + [f"-Dc_link_args={flag}" for flag in link if "sanitize=" not in flag], env=env)
        run([meson, "compile", "-C", mbuild, "-j", "2"], env=env)
        run_consumer(mbuild, version, env)

    cbuild = os.path.join(tmp, "cmake")
    run([cmake, "-S", consumer, "-B", cbuild, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=",
         "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror " + " ".join(flags),
         "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror " + " ".join(flags),
         "-DCMAKE_EXE_LINKER_FLAGS=" + " ".join(flags)], env=env)
    run([cmake, "--build", cbuild, "--parallel", "2"], env=env)
    run_consumer(cbuild, version, env)
    return 0


def subproject(source, build, version, sanitize, env, tmp):
    meson = shutil.which("meson")
    if meson is None:
        print("meson is not installed")
        return SKIP
    project = os.path.join(tmp, "consumer")
    shutil.copytree(os.path.join(source, "tests/embed/consumer"), project)
    os.mkdir(os.path.join(project, "subprojects"))
    os.symlink(os.path.abspath(source), os.path.join(project, "subprojects", "wsx"))
    sbuild = os.path.join(tmp, "build")
    # Unoptimised: this checks that wsx builds and links as a subproject, not how fast it runs.
    run([meson, "setup", sbuild, project, "--force-fallback-for=wsx", "--buildtype=plain",
         f"-Db_sanitize={sanitize or 'none'}", "-Db_lundef=false"], env=env)
    run([meson, "compile", "-C", sbuild, "-j", "2", "consumer", "consumer_c"], env=env)
    run_consumer(sbuild, version, env)
    return 0


def main():
    mode, source, build, version, sanitize, cxx, cc = sys.argv[1:8]
    check_snippet_in_readme(source)
    # One toolchain for the consumer's C and C++, matching the one wsx was built with: a program
    # that links sanitized libraries needs the same compiler's runtime.
    if "clang++" in cxx:
        cc = cxx.replace("clang++", "clang")
    env = dict(os.environ, CXX=cxx, CC=cc)
    # Settings of the enclosing build must not leak into the consumer's.
    for name in ["MESON_BUILD_ROOT", "MESON_SOURCE_ROOT", "MESONINTROSPECT", "PKG_CONFIG_PATH"]:
        env.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="wsx-embed-") as tmp:
        status = (installed if mode == "installed" else subproject)(
            source, build, version, sanitize, env, tmp)
    if status == 0:
        print(f"embed {mode}: ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
