"""Reading flake.nix as text, for tests that must not evaluate it.

Nix cannot fetch anything on the machines that run the tests, so the flake is never evaluated: the tests
read its source instead. Regular expressions over raw Nix would also match inside comments and strings
(a commented-out `ports = {`, a `]` in a shell snippet), so the text is read twice over: as written, and as
code only, with comments and the contents of strings blanked at the same offsets. Patterns are searched
in the code and the matching source is read from the raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _end_of_string(text: str, i: int) -> int:
    """Index after the "..." string whose opening quote is at ``i``."""
    k = i + 1
    while k < len(text):
        if text[k] == "\\":
            k += 2
        elif text[k] == '"':
            return k + 1
        elif text.startswith("${", k):
            k = _end_of_code(text, k + 2)
        else:
            k += 1
    raise AssertionError(f"flake.nix: string at offset {i} never ends")


def _end_of_indented(text: str, i: int) -> int:
    """Index after the ''...'' string whose opening quotes are at ``i``."""
    k = i + 2
    while k < len(text):
        if text.startswith("'''", k) or text.startswith("''$", k):
            k += 3
        elif text.startswith("''\\", k):
            k += 4
        elif text.startswith("''", k):
            return k + 2
        elif text.startswith("${", k):
            k = _end_of_code(text, k + 2)
        else:
            k += 1
    raise AssertionError(f"flake.nix: indented string at offset {i} never ends")


def _end_of_code(text: str, k: int) -> int:
    """Index after the ``}`` that closes an interpolation whose body starts at ``k``."""
    depth = 1
    while k < len(text):
        if text[k] == '"':
            k = _end_of_string(text, k)
            continue
        if text.startswith("''", k):
            k = _end_of_indented(text, k)
            continue
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        k += 1
        if depth == 0:
            return k
    raise AssertionError("flake.nix: interpolation never ends")


def code_only(text: str) -> str:
    """``text`` with comments and the contents of strings blanked (same offsets), so that brackets and
    `name = value;` patterns are only found in code."""
    out = list(text)

    def blank(start: int, end: int) -> None:
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < len(text):
        if text[i] == "#" or text.startswith("/*", i):
            closing = "\n" if text[i] == "#" else "*/"
            found = text.find(closing, i + 1)
            end = len(text) if found < 0 else found + len(closing)
            blank(i, end)
            i = end
        elif text[i] == '"':
            end = _end_of_string(text, i)
            blank(i + 1, end - 1)
            i = end
        elif text.startswith("''", i):
            end = _end_of_indented(text, i)
            blank(i + 2, end - 2)
            i = end
        else:
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class NixText:
    """flake.nix as written (``raw``) and as `code_only` sees it (``code``): the same offsets in both, so a
    match found in the code can be read back with its strings and comments."""

    raw: str
    code: str

    def block(self, opening: str) -> tuple[str, str]:
        """(raw, code) of the bracketed value that follows ``opening`` (a regex ending in ``{`` or ``[``)."""
        for match in re.finditer(opening, self.raw):
            start = match.end() - 1
            if self.code[match.start() : match.start() + 1] != self.raw[match.start()] or self.code[start] not in "{[":
                continue  # inside a comment or a string
            close = {"{": "}", "[": "]"}[self.code[start]]
            depth = 0
            for k in range(start, len(self.code)):
                depth += (self.code[k] == self.code[start]) - (self.code[k] == close)
                if depth == 0:
                    return self.raw[start : k + 1], self.code[start : k + 1]
        raise AssertionError(f"flake.nix has no {opening!r} block")


def flake_inputs(flake: NixText) -> dict[str, str]:
    """Input name -> url of the flake's `inputs = { ... }`, to compare with flake.lock's root inputs."""
    raw, code = flake.block(r"\binputs = \{")
    names = re.findall(r"([\w-]+)\.url = ", code)
    urls = dict(re.findall(r'([\w-]+)\.url = "([^"]+)";', raw))
    assert set(names) == set(urls), 'write each input as `name.url = "github:owner/repo[/ref]";`'
    return urls


def dev_shell_packages(flake: NixText) -> list[str]:
    """The nixpkgs attributes of devShells.default's `packages`: what `nix develop` puts on PATH (with the
    Linux-only ones appended after the list)."""
    _, shell = flake.block(r"devShells\.default = pkgs\.mkShell \{")
    start = shell.index("packages = with pkgs; [")
    listing = shell[start + len("packages = with pkgs; [") : shell.index("]", start)]
    names = listing.split()
    linux_only = re.search(r"\]\s*(?:#[^\n]*\n\s*)*\+\+ lib\.optionals stdenv\.isLinux \[([^\]]*)\]", shell[start:])
    if linux_only:  # packages nixpkgs builds for Linux only (`++ lib.optionals stdenv.isLinux [ ... ]`)
        names += linux_only.group(1).split()
    assert all(re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)?", name) for name in names), (
        f"keep devShells.default.packages a plain `with pkgs; [ name ... ]` list (or name.output): {names}"
    )
    return names


def flake_ports(flake: NixText) -> dict[str, int]:
    """The `ports = { name = number; ... }` the services of `nix run .#services` listen on."""
    _, code = flake.block(r"\bports = \{")
    return {name: int(number) for name, number in re.findall(r"(\w+) = (\d+);", code)}


def service_block(flake: NixText, kind: str, name: str) -> str:
    """Source of `services.<kind>."<name>" = { ... }`: one service's settings, to check where it listens."""
    raw, _ = flake.block(rf'services\.{re.escape(kind)}\."{re.escape(name)}" = \{{')
    return raw
