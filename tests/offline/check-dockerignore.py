#!/usr/bin/env python3
"""The Docker build context keeps what the image's build and test step need.

Usage: check-dockerignore.py REPO [DOCKERIGNORE]

Applies the .dockerignore patterns the way Docker does (in order, the last matching one wins; a
pattern that names a directory takes everything under it; `!` re-includes; `*` and `?` stop at
`/`, `**` does not) to the files git tracks, and fails when one the image needs would be left
out: the CMake files, the sources, the dependency script, and every file a unit test opens
through RLOG_SOURCE_DIR (ConfigTest.DocsNameEveryKeyVariableAndFlag reads
docs/CONFIGURATION.md: without it the Dockerfile's ctest step fails, and so does the kind
workflow's first step).
"""
import pathlib
import re
import subprocess
import sys


def compile_pattern(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):  # any directories, none included
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    # A pattern naming a directory takes everything under it.
    return re.compile("^" + out + "(?:/.*)?$")


def load(path: pathlib.Path) -> list[tuple[bool, re.Pattern, str]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line[1:] if include else line
        pattern = pattern.strip().lstrip("/").rstrip("/")
        rules.append((include, compile_pattern(pattern), line))
    return rules


def excluded(path: str, rules) -> bool:
    out = False
    for include, regex, _ in rules:
        if regex.match(path):
            out = not include
    return out


def main() -> int:
    repo = pathlib.Path(sys.argv[1])
    ignore = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else repo / ".dockerignore"
    rules = load(ignore)
    files = subprocess.run(["git", "-C", str(repo), "ls-files"], check=True, capture_output=True,
                           text=True).stdout.split()
    needed = {"CMakeLists.txt", "scripts/install-deps.sh", "src/app/main.cc"}
    needed |= {f for f in files if f.startswith(("src/", "proto/")) and f.endswith(
        (".cc", ".h", ".proto", "CMakeLists.txt"))}
    for f in files:
        if f.startswith("src/") and f.endswith(".cc"):
            text = (repo / f).read_text(errors="replace")
            for m in re.finditer(r'RLOG_SOURCE_DIR\)\s*\+\s*"/([^"]+)"', text):
                needed.add(m.group(1))
    missing = sorted(f for f in needed if excluded(f, rules))
    if missing:
        print(f"{ignore} leaves out files the image's build or tests need:")
        for f in missing:
            print(f"  {f}")
        return 1
    print(f"{ignore}: the build context keeps all {len(needed)} files the build and tests need")
    return 0


if __name__ == "__main__":
    sys.exit(main())
