"""Finding the programs the code runs, so that a test can check an environment provides each of them.

A list of required programs kept by hand goes stale the day someone adds a `subprocess.run(["kubectl", ...])`,
so the list is read from the code: the Python sources (their ASTs, following commands built elsewhere),
shell scripts (their shebangs and the first word of each command) and the Makefile's recipes. The scan
fails loudly on a launch it cannot name rather than skipping it, and the paths and directories it reads
are passed in, so it can scan a few temporary files as well as the repository.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SUBPROCESS_FUNCTIONS = {"run", "Popen", "call", "check_call", "check_output"}


class UnresolvedProgramError(Exception):
    """A launched program that the scan cannot name from the code."""


@dataclass(frozen=True)
class Scope:
    """Where a name is looked up: a function of a module, or (``function`` None) the module's top level."""

    tree: ast.Module
    function: ast.FunctionDef | ast.AsyncFunctionDef | None


@dataclass(frozen=True)
class Launch:
    """A place (file:line) that starts a program, and the names that program can have there."""

    where: str
    names: frozenset[str]


class ProgramScan:
    """Names the programs Python code starts: `shutil.which("x")`, and the first word of the command of
    subprocess calls, os.exec*, create_subprocess_exec and the embedded supervisor's ProgramSpec. Commands
    built elsewhere are followed through local and module variables and through the return values of
    functions defined in the scanned code (`airflow_command(...)`, `seaweedfs_binary()`).

    Places are reported relative to ``root`` when a file is under it, else by the file's full path."""

    def __init__(self, files: list[Path], root: Path) -> None:
        self.root = root
        self.modules = {path: ast.parse(path.read_text(), filename=str(path)) for path in files}
        self.functions: dict[str, list[Scope]] = {}
        for tree in self.modules.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, []).append(Scope(tree, node))

    def launches(self) -> Iterator[Launch]:
        for path, tree in self.modules.items():
            scopes = [Scope(tree, None)] + [
                Scope(tree, node) for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            for scope in scopes:
                if scope.function is not None and scope.function.name in LAUNCHERS:
                    continue
                body = scope.function.body if scope.function else tree.body
                for call in (node for stmt in body for node in _walk_own(stmt) if isinstance(node, ast.Call)):
                    command = _launched(call)
                    if command is None:
                        continue
                    where = f"{self._where(path)}:{call.lineno}"
                    try:
                        names = self.resolve(command, scope, 0)
                        if not names:
                            raise UnresolvedProgramError("only environment overrides")
                    except UnresolvedProgramError as exc:
                        raise AssertionError(
                            f"{where}: cannot tell which program `{ast.unparse(command)}` runs ({exc}): build the "
                            "command from a literal, a variable or a function's return value"
                        ) from None
                    yield Launch(where, frozenset(names))

    def resolve(self, expr: ast.expr, scope: Scope, depth: int) -> set[str]:
        if depth > 12:
            raise UnresolvedProgramError("too deep")
        nested = depth + 1
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            word = expr.value.split()[0] if expr.value.strip() else ""
            return {word.rsplit("/", 1)[-1]} if word else set()
        if isinstance(expr, ast.JoinedStr):
            parts = [v.value for v in expr.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            if not parts:
                raise UnresolvedProgramError("an f-string without literal text")
            return {parts[-1].rsplit("/", 1)[-1]}
        if isinstance(expr, ast.List | ast.Tuple):
            if not expr.elts:
                raise UnresolvedProgramError("an empty command")
            return self.resolve(expr.elts[0], scope, nested)
        if isinstance(expr, ast.Starred):
            return self.resolve(expr.value, scope, nested)
        if isinstance(expr, ast.BinOp):
            return self.resolve(expr.right if isinstance(expr.op, ast.Div) else expr.left, scope, nested)
        if isinstance(expr, ast.BoolOp):
            return set().union(*(self.resolve(value, scope, nested) for value in expr.values))
        if isinstance(expr, ast.IfExp):
            return self.resolve(expr.body, scope, nested) | self.resolve(expr.orelse, scope, nested)
        if isinstance(expr, ast.Attribute) and ast.unparse(expr) == "sys.executable":
            return {"python"}
        if isinstance(expr, ast.Name):
            return self._resolve_name(expr.id, scope, nested)
        if isinstance(expr, ast.Call):
            return self._resolve_call(expr, scope, nested)
        raise UnresolvedProgramError(type(expr).__name__)

    def _resolve_name(self, name: str, scope: Scope, depth: int) -> set[str]:
        for where in (scope, Scope(scope.tree, None)):
            statements = list(ast.walk(where.function)) if where.function else list(where.tree.body)
            values = [
                node.value
                for node in statements
                if isinstance(node, ast.Assign | ast.AnnAssign)
                and node.value is not None
                and any(isinstance(t, ast.Name) and t.id == name for t in _targets(node))
            ]
            if values:
                return set().union(*(self.resolve(value, where, depth) for value in values))
        raise UnresolvedProgramError(f"`{name}` is not assigned in the function or module")

    def _resolve_call(self, call: ast.Call, scope: Scope, depth: int) -> set[str]:
        function = ast.unparse(call.func)
        if function in {"os.environ.get", "os.getenv"}:
            return set()  # an override from the environment; the expression's fallback names the program
        if function in {"str", "Path", "os.fspath", "shutil.which"} or function.endswith(".joinpath"):
            if not call.args:
                raise UnresolvedProgramError(f"{function}() without arguments")
            return self.resolve(call.args[-1 if function.endswith(".joinpath") else 0], scope, depth)
        defined = self.functions.get(function.rsplit(".", 1)[-1], [])
        if not defined:
            raise UnresolvedProgramError(f"{function}() is not defined in the scanned code")
        names: set[str] = set()
        for target in defined:
            assert target.function is not None
            for node in ast.walk(target.function):
                if isinstance(node, ast.Return) and node.value is not None:
                    names |= self.resolve(node.value, target, depth)
        return names

    def which_calls(self) -> Iterator[Launch]:
        for path, tree in self.modules.items():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and ast.unparse(node.func) == "shutil.which"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    yield Launch(f"{self._where(path)}:{node.lineno}", frozenset({str(node.args[0].value)}))

    def _where(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)


def _walk_own(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk that leaves out functions (each is a scope of its own)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _walk_own(child)


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _launched(call: ast.Call) -> ast.expr | None:
    """The command expression of a call that starts a program, else None."""
    function = ast.unparse(call.func)
    module, _, name = function.rpartition(".")
    keyword = {k.arg: k.value for k in call.keywords}
    if module == "subprocess" and name in SUBPROCESS_FUNCTIONS:
        return call.args[0] if call.args else keyword.get("args")
    if (module == "os" and name.startswith(("exec", "spawn", "posix_spawn"))) or name == "create_subprocess_exec":
        args = call.args[1:] if name.startswith("spawn") else call.args
        return args[0] if args else None
    if function == "ProgramSpec":  # run by the embedded services' supervisord
        return call.args[1] if len(call.args) > 1 else keyword.get("command")
    if name in LAUNCHERS:  # the callers name the program; the launcher's own call runs its parameter
        return call.args[0] if call.args else keyword.get("command")
    return None


# Functions of the code that start the command they are given (their callers are scanned instead).
LAUNCHERS = {"run_in_foreground"}


# Shell words that are builtins or syntax, not programs on PATH.
SHELL_SKIP = {
    *("cd", "set", "export", "exec", "for", "do", "done", "if", "then", "else", "elif", "fi", "while", "until"),
    *("case", "esac", "in", "echo", "printf", "exit", "return", "local", "true", "false", "test", "source"),
    *("read", "shift", "trap", "wait", "eval", "pwd", "type", "unset", "declare", "readonly", "command"),
}
# Words that may come before a command's name.
SHELL_PREFIXES = {"exec", "command", "time", "!", "do", "then", "else", "if", "while", "until"}


def shell_commands(line: str, root: Path) -> set[str]:
    """Programs a line of shell runs: the first word of each simple command, `command -v X`'s X. A path to a
    file under ``root`` is a script of the repository, scanned on its own, not a program to provide."""
    line = re.sub(r"'[^']*'", "''", line)  # single-quoted text is data (awk programs, patterns)
    # so is double-quoted text with spaces and no command substitution (messages); "${PYTHON:-python}" stays
    line = re.sub(r'"([^"]*)"', lambda m: '""' if " " in m[1] and "$(" not in m[1] and "`" not in m[1] else m[0], line)
    found: set[str] = set()
    for segment in re.split(r"\$\(|`|\|\||&&|[|;()]", line):
        tokens = segment.split()
        while tokens and (re.match(r"[A-Za-z_]\w*=", tokens[0]) or tokens[0] in SHELL_PREFIXES):
            probe = tokens[:2] == ["command", "-v"]
            tokens = tokens[2:] if probe else tokens[1:]
            if probe:
                break
        word = _command_word(tokens[0], root) if tokens else None
        if word:
            found.add(word)
    return found


def _command_word(token: str, root: Path) -> str | None:
    token = token.strip('"')
    default = re.fullmatch(r"\$\{\w+:-([^}]*)\}", token)
    token = default.group(1) if default else token
    if token.startswith("$") or "=" in token or ("/" in token and (root / token.removeprefix("./")).is_file()):
        return None  # a variable, or a script of this repository (scanned on its own)
    name = token.rsplit("/", 1)[-1]
    return name if re.fullmatch(r"[A-Za-z][\w.+-]*", name) and name not in SHELL_SKIP else None


def _shebang(text: str) -> set[str]:
    if not text.startswith("#!"):
        return set()
    words = [word.rsplit("/", 1)[-1] for word in text.splitlines()[0][2:].split()]
    return set(words[:2]) if words and words[0] == "env" else set(words[:1])


def _script_commands(path: Path, root: Path) -> set[str]:
    text = path.read_text()
    lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return _shebang(text).union(*(shell_commands(line, root) for line in lines))


def _makefile_commands(path: Path, root: Path) -> set[str]:
    """Programs the recipes run, with the Makefile's variables expanded (`$(UV)` is uv, `$(PYTHON)` runs
    `command -v python3.11 || command -v python3`)."""
    text = path.read_text()
    variables = dict(re.findall(r"^(?:export\s+)?([A-Za-z_]\w*)\s*(?::=|\?=|\+=|=)\s*(.*)$", text, re.MULTILINE))

    def expand(value: str, depth: int = 0) -> str:
        def one(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("shell "):
                return inner.removeprefix("shell ")
            return expand(variables.get(inner, ""), depth + 1) if depth < 8 else ""

        return re.sub(r"\$\(([^()]*)\)", one, value.replace("$$", "\0"))

    found: set[str] = set()
    for line in text.splitlines():
        if line.startswith("\t"):
            recipe = re.sub(r"\$[@<^?*]", "", expand(line.strip().lstrip("@-+"))).replace("\0", "$")
            found |= shell_commands(recipe, root)
    return found


def programs_the_code_runs(
    root: Path, dirs: Iterable[str], scripts: Iterable[str], makefile: str
) -> dict[str, set[str]]:
    """Program -> where the code runs it (file:line, or the script). Scans the *.py and *.sh files under
    ``root``'s ``dirs``, the ``scripts`` (paths under ``root``) and the recipes of ``root``/``makefile``."""
    dirs = list(dirs)
    python_files = sorted(
        path for name in dirs for path in (root / name).rglob("*.py") if "__pycache__" not in path.parts
    )
    scan = ProgramScan(python_files, root)
    found: dict[str, set[str]] = {}
    for launch in [*scan.launches(), *scan.which_calls()]:
        for name in launch.names:
            found.setdefault(name, set()).add(launch.where)
    shell_scripts = [
        *(root / script for script in scripts),
        *sorted(path for name in dirs for path in (root / name).rglob("*.sh")),
    ]
    for script in shell_scripts:
        for name in _script_commands(script, root):
            found.setdefault(name, set()).add(str(script.relative_to(root)))
    for name in _makefile_commands(root / makefile, root):
        found.setdefault(name, set()).add(makefile)
    return found


def missing_from_dev_shell(
    programs: Mapping[str, set[str]],
    packages: Collection[str],
    package_of: Mapping[str, str],
    not_from_nix: Collection[str],
) -> list[str]:
    """One line per program (-> where it runs) that the dev shell does not provide, saying what to do.
    ``package_of`` maps a program to the nixpkgs attribute that provides it (NIX_PACKAGE_OF of
    tests/unit/test_nix_flake.py); programs in ``not_from_nix`` come from elsewhere and are not checked."""
    problems = []
    for program, where in sorted(programs.items()):
        if program in not_from_nix:
            continue
        package = package_of.get(program)
        if package is None:
            fix = (
                "unknown program: add the nixpkgs package that provides it to devShells.default's packages in "
                "flake.nix and map it in NIX_PACKAGE_OF (tests/unit/test_nix_flake.py), or list it in "
                "FROM_PROJECT_ENV with the reason"
            )
        elif package not in packages:
            fix = f"add `{package}` to devShells.default's packages in flake.nix"
        else:
            continue
        problems.append(f"{program} (run at {', '.join(sorted(where))}): {fix}")
    return problems
