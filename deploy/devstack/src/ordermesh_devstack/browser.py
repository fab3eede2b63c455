"""The headless browser the console's tests drive: Debian's chromium and a Japanese font, installed with apt-get
when absent (Playwright's own browser download is not reachable from here)."""

import fcntl
import os
import shutil
import subprocess

from .kafka import cache_root

PACKAGES = ("chromium", "fonts-ipafont-gothic")


def _has_japanese_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    listed = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True, check=False)
    return bool(listed.stdout.strip())


def missing_packages() -> list[str]:
    """The Debian packages of PACKAGES that are not installed yet."""
    present = {"chromium": shutil.which("chromium") is not None, "fonts-ipafont-gothic": _has_japanese_font()}
    return [package for package in PACKAGES if not present[package]]


def ensure_chromium() -> str:
    """Path of the chromium binary, installing the missing packages with apt-get first (needs root, as in CI).

    Serialised by a file lock so a background install started at test collection and a fixture asking for the browser
    don't run apt-get twice."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = missing_packages()
        if missing:
            if os.geteuid() != 0:
                raise RuntimeError(f"missing {missing}: install with `apt-get install -y {' '.join(missing)}` (needs root)")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, capture_output=True)
    binary = shutil.which("chromium")
    if binary is None:
        raise RuntimeError("apt-get installed chromium but it is not on PATH")
    return binary
