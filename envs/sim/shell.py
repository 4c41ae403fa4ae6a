"""The simulated phone's `/system/bin/sh`: parse one `sh -c` command line and run it like mksh does.

This module is the interpreter (quoting, `$` expansion, globbing, `;` `&&` `||` `|`, redirections,
`if`/`for`/`while`, command substitution); the device commands live in `shell_commands`.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import fnmatch
import operator
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from droidrl.envs.sim import limits
from droidrl.envs.sim.shell_commands import BIN_DIRS, COMMANDS
from droidrl.envs.sim.shell_util import CommandError, Context, PendingInput, ShellExit, resolve_path

SH = "/system/bin/sh"

# The environment adbd gives `adb shell` on an API 33 emulator (the parts tools read).
DEFAULT_ENV = {
    "HOME": "/",
    "PATH": "/product/bin:/apex/com.android.runtime/bin:/apex/com.android.art/bin:"
    "/system_ext/bin:/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin",
    "EXTERNAL_STORAGE": "/sdcard",
    "ANDROID_DATA": "/data",
    "ANDROID_ROOT": "/system",
    "ANDROID_STORAGE": "/storage",
    "ANDROID_ASSETS": "/system/app",
    "TMPDIR": "/data/local/tmp",
    "SHELL": "/bin/sh",
    "USER": "shell",
    "LOGNAME": "shell",
    "IFS": " \t\n",
}
SHELL_PID = "4321"  # `$$`; any stable number will do


@dataclass(frozen=True)
class ShellResult:
    """What one `sh -c` run produced; `exit_code` is what `$?` / shell v2 report (0..255)."""

    stdout: bytes
    stderr: bytes
    exit_code: int


def run(
    phone: Any,
    command: str,
    budget: limits.Budget | None = None,
    stdin: bytes | PendingInput = b"",
    sink: Callable[[bytes], None] | None = None,
) -> ShellResult:
    """Run one command line on `phone` the way adbd's `sh -c COMMAND` would.

    The caller need not hold the phone's lock: the shell takes it around each step that touches the
    phone (a command, a redirection, a glob), so a `sleep` or a long loop never blocks other clients.
    The command line runs under `budget` (a fresh `limits.Budget` if None); past it, it is killed.
    `stdin` is what its commands read (bytes, or the host's input still arriving). With a `sink`, a
    command that streams (`logcat`) hands it its stdout as it goes, and the result holds the rest.
    """
    shell = _Shell(phone)
    if sink is not None:
        shell.stdout = _SinkedStream(sink)
    with limits.running(budget):
        try:
            status = shell.run_script(command, stdin, shell.stdout, shell.stderr, top_level=True)
        except limits.ShellKilled as killed:
            status = killed.code
            if killed.message and len(shell.stderr) < limits.STREAM_LIMIT:
                bytearray.extend(shell.stderr, f"{killed.message}\n".encode())
        except RecursionError:  # a script nested deeper than Python's stack, before DEPTH_LIMIT
            status = limits.OUT_OF_MEMORY[1]
            bytearray.extend(shell.stderr, f"{limits.OUT_OF_MEMORY[0]}\n".encode())
    return ShellResult(bytes(shell.stdout), bytes(shell.stderr), status & 0xFF)


# ==== tokens ==========================================================================================
# A word is a sequence of parts; the part kind records quoting, which decides expansion, field
# splitting and globbing: "lit" (unquoted text), "q" (quoted or backslash-escaped text), "var" / "qvar"
# (a `$` parameter, text = its body), "cmd" / "qcmd" (command substitution, text = the script),
# "arith" / "qarith" (`$((...))`, text = the expression).


class ShellSyntaxError(Exception):
    """A command line mksh would refuse to run; the message follows `sh: syntax error: `."""


@dataclass(frozen=True)
class Part:
    kind: str
    text: str


@dataclass(frozen=True)
class Word:
    parts: tuple[Part, ...]

    def literal(self) -> str | None:
        """The word's text if it is entirely unquoted plain text (keywords, assignments), else None."""
        if all(p.kind == "lit" for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None


@dataclass(frozen=True)
class Op:
    text: str  # ; & && || | ( ) and "\n"


@dataclass(frozen=True)
class RedirOp:
    op: str  # > >> < >& <&
    fd: int | None  # an explicit descriptor number such as the 2 of `2>`


_OPERATORS = ("&&", "||", ";;", ">>", ">&", "<&", "<<", ">|", ";", "&", "|", "(", ")", "<", ">")
_REDIRECTS = {">", ">>", "<", ">&", "<&", ">|", "<<"}
_SPECIAL_PARAMS = "?$#!@*-0123456789"
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Lexer:
    """Split a command line into words and operators, keeping each word's quoting."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.i = 0
        self.tokens: list[Word | Op | RedirOp] = []
        self.parts: list[Part] = []
        self.in_word = False  # true once a word has started, even as "" (an empty quoted word)

    def run(self) -> list[Word | Op | RedirOp]:
        src = self.src
        while self.i < len(src):
            c = src[self.i]
            if c in " \t":
                self._end_word()
                self.i += 1
            elif c == "\n":
                self._end_word()
                self.tokens.append(Op("\n"))
                self.i += 1
            elif c == "#" and not self.in_word:
                end = src.find("\n", self.i)
                self.i = len(src) if end < 0 else end
            elif c in ";&|()<>":
                self._operator()
            elif c == "\\":
                self._backslash()
            elif c == "'":
                end = src.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated '")
                self._add("q", src[self.i + 1 : end])
                self.i = end + 1
            elif c == '"':
                self._double_quoted()
            elif c == "$":
                self._add_part(self._dollar(quoted=False))
            elif c == "`":
                script, self.i = _backquoted(src, self.i)
                self._add("cmd", script)
            else:
                self._add("lit", c)
                self.i += 1
        self._end_word()
        return self.tokens

    def _add(self, kind: str, text: str) -> None:
        self._add_part(Part(kind, text))

    def _add_part(self, part: Part) -> None:
        self.in_word = True
        last = self.parts[-1] if self.parts else None
        if last and last.kind == part.kind and part.kind in ("lit", "q"):
            self.parts[-1] = Part(part.kind, last.text + part.text)  # merge runs of plain text
        else:
            self.parts.append(part)

    def _end_word(self) -> None:
        if self.in_word:
            self.tokens.append(Word(tuple(self.parts)))
        self.parts, self.in_word = [], False

    def _operator(self) -> None:
        src = self.src
        op = next(o for o in _OPERATORS if src.startswith(o, self.i))
        fd = None
        if op in _REDIRECTS:
            literal = Word(tuple(self.parts)).literal() if self.in_word else None
            if literal is not None and literal.isdigit():  # `2>`: the digits name a descriptor
                fd, self.parts, self.in_word = int(literal), [], False
        self._end_word()
        self.i += len(op)
        if op == "<<":
            raise ShellSyntaxError("here-documents are not supported by the simulated shell")
        if op in _REDIRECTS:
            self.tokens.append(RedirOp(">" if op == ">|" else op, fd))
        else:
            self.tokens.append(Op(op))

    def _backslash(self) -> None:
        nxt = self.src[self.i + 1 : self.i + 2]
        if nxt == "\n":  # line continuation
            self.i += 2
        elif nxt:
            self._add("q", nxt)
            self.i += 2
        else:
            self._add("lit", "\\")
            self.i += 1

    def _double_quoted(self) -> None:
        src = self.src
        self.i += 1
        self._add("q", "")  # "" is still a word
        while True:
            if self.i >= len(src):
                raise ShellSyntaxError('unterminated "')
            c = src[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\" and src[self.i + 1 : self.i + 2] in ('"', "\\", "$", "`", "\n"):
                if src[self.i + 1] != "\n":
                    self._add("q", src[self.i + 1])
                self.i += 2
            elif c == "$":
                self._add_part(self._dollar(quoted=True))
            elif c == "`":
                script, self.i = _backquoted(src, self.i)
                self._add("qcmd", script)
            else:
                self._add("q", c)
                self.i += 1

    def _dollar(self, quoted: bool) -> Part:
        """Parse a `$` expansion starting at self.i and return it as a part."""
        src, i = self.src, self.i
        q = "q" if quoted else ""
        nxt = src[i + 1 : i + 2]
        if src.startswith("$((", i):
            end = src.find("))", i + 3)
            if end < 0:
                raise ShellSyntaxError("unterminated $((")
            self.i = end + 2
            return Part(q + "arith", src[i + 3 : end])
        if nxt == "(":
            end = _find_close_paren(src, i + 2)
            self.i = end + 1
            return Part(q + "cmd", src[i + 2 : end])
        if nxt == "{":
            end = src.find("}", i + 2)
            if end < 0:
                raise ShellSyntaxError("unterminated ${")
            self.i = end + 1
            return Part(q + "var", src[i + 2 : end])
        if nxt and nxt in _SPECIAL_PARAMS:
            self.i = i + 2
            return Part(q + "var", nxt)
        m = _NAME_RE.match(src, i + 1)
        if m:
            self.i = m.end()
            return Part(q + "var", m.group())
        self.i = i + 1
        return Part("q" if quoted else "lit", "$")  # a lone `$` is just a dollar sign


def _find_close_paren(src: str, i: int) -> int:
    """Index of the `)` closing a `$(` whose body starts at i, skipping quotes and nested parens."""
    depth = 1
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            i = src.find("'", i + 1)
            if i < 0:
                break
        elif c == '"':
            i += 1
            while i < len(src) and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ShellSyntaxError("unterminated $(")


def _backquoted(src: str, i: int) -> tuple[str, int]:
    r"""The script inside `...` starting at i (its \` \\ \$ escapes undone) and the index after it."""
    out, j = [], i + 1
    while j < len(src):
        c = src[j]
        if c == "\\" and src[j + 1 : j + 2] in ("`", "\\", "$"):
            out.append(src[j + 1])
            j += 2
        elif c == "`":
            return "".join(out), j + 1
        else:
            out.append(c)
            j += 1
    raise ShellSyntaxError("unterminated `")


# ==== syntax tree =====================================================================================


@dataclass(frozen=True)
class Redirect:
    op: str
    fd: int
    target: Word


@dataclass(frozen=True)
class Simple:
    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...]


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Any, ...]  # Simple | Compound
    negate: bool


@dataclass(frozen=True)
class AndOr:
    first: Pipeline
    rest: tuple[tuple[str, Pipeline], ...]  # ("&&" | "||", pipeline)


@dataclass(frozen=True)
class Sequence:
    items: tuple[AndOr, ...]


@dataclass(frozen=True)
class If:
    clauses: tuple[tuple[Sequence, Sequence], ...]  # (condition, body) for `if` and each `elif`
    otherwise: Sequence | None


@dataclass(frozen=True)
class For:
    name: str
    words: tuple[Word, ...] | None  # None: `for x; do` (the positional parameters, always empty here)
    body: Sequence


@dataclass(frozen=True)
class While:
    condition: Sequence
    body: Sequence
    until: bool


@dataclass(frozen=True)
class Group:
    body: Sequence
    subshell: bool  # ( ... ) runs on a copy of the variables and working directory


@dataclass(frozen=True)
class Compound:
    node: If | For | While | Group
    redirects: tuple[Redirect, ...]


_LIST_END = {"then", "elif", "else", "fi", "do", "done", "}"}


class _Parser:
    """Recursive descent over the tokens: sequence > and-or list > pipeline > command."""

    def __init__(self, tokens: list[Word | Op | RedirOp]) -> None:
        self.tokens = tokens
        self.i = 0

    def parse(self) -> Sequence:
        seq = self.sequence()
        if self.i < len(self.tokens):
            raise ShellSyntaxError(f"'{self._describe(self.tokens[self.i])}' unexpected")
        return seq

    def _peek(self) -> Word | Op | RedirOp | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _peek_keyword(self) -> str | None:
        tok = self._peek()
        return tok.literal() if isinstance(tok, Word) else None

    def _is_op(self, *ops: str) -> bool:
        tok = self._peek()
        return isinstance(tok, Op) and tok.text in ops

    def _skip_newlines(self) -> None:
        while self._is_op("\n"):
            self.i += 1

    def _expect_keyword(self, keyword: str) -> None:
        self._skip_separators()
        if self._peek_keyword() != keyword:
            tok = self._peek()
            found = "end of input" if tok is None else f"'{self._describe(tok)}'"
            raise ShellSyntaxError(f"{found} unexpected, expecting '{keyword}'")
        self.i += 1

    def _skip_separators(self) -> None:
        while self._is_op("\n", ";", "&"):
            self.i += 1

    @staticmethod
    def _describe(tok: Word | Op | RedirOp) -> str:
        if isinstance(tok, Word):
            return "".join(p.text for p in tok.parts)
        return "newline" if isinstance(tok, Op) and tok.text == "\n" else getattr(tok, "text", "redirect")

    def sequence(self) -> Sequence:
        items = []
        self._skip_separators()
        while self._peek() is not None and not self._is_op(")") and self._peek_keyword() not in _LIST_END:
            items.append(self.and_or())
            if not self._is_op("\n", ";", "&"):
                break
            self._skip_separators()
        return Sequence(tuple(items))

    def and_or(self) -> AndOr:
        first = self.pipeline()
        rest = []
        while self._is_op("&&", "||"):
            op = self.tokens[self.i].text
            self.i += 1
            self._skip_newlines()
            rest.append((op, self.pipeline()))
        return AndOr(first, tuple(rest))

    def pipeline(self) -> Pipeline:
        negate = False
        if self._peek_keyword() == "!":
            negate = True
            self.i += 1
        commands = [self.command()]
        while self._is_op("|"):
            self.i += 1
            self._skip_newlines()
            commands.append(self.command())
        return Pipeline(tuple(commands), negate)

    def command(self) -> Simple | Compound:
        keyword = self._peek_keyword()
        compound = {"if": self._if, "for": self._for, "while": self._while, "until": self._while}
        if keyword in compound:
            self.i += 1
            return Compound(compound[keyword](keyword), self._redirects())
        if keyword == "{":
            self.i += 1
            body = self.sequence()
            self._expect_keyword("}")
            return Compound(Group(body, subshell=False), self._redirects())
        if self._is_op("("):
            self.i += 1
            body = self.sequence()
            if not self._is_op(")"):
                raise ShellSyntaxError("missing ')'")
            self.i += 1
            return Compound(Group(body, subshell=True), self._redirects())
        return self._simple()

    def _simple(self) -> Simple:
        words: list[Word] = []
        redirects: list[Redirect] = []
        while True:
            tok = self._peek()
            if isinstance(tok, Word):
                words.append(tok)
                self.i += 1
            elif isinstance(tok, RedirOp):
                redirects.append(self._redirect())
            else:
                break
        if not words and not redirects:
            tok = self._peek()
            found = "end of input" if tok is None else f"'{self._describe(tok)}'"
            raise ShellSyntaxError(f"{found} unexpected")
        return Simple(tuple(words), tuple(redirects))

    def _redirect(self) -> Redirect:
        tok = self.tokens[self.i]
        assert isinstance(tok, RedirOp)
        self.i += 1
        target = self._peek()
        if not isinstance(target, Word):
            raise ShellSyntaxError(f"missing file name after '{tok.op}'")
        self.i += 1
        default_fd = 0 if tok.op.startswith("<") else 1
        return Redirect(tok.op, default_fd if tok.fd is None else tok.fd, target)

    def _redirects(self) -> tuple[Redirect, ...]:
        redirects = []
        while isinstance(self._peek(), RedirOp):
            redirects.append(self._redirect())
        return tuple(redirects)

    def _if(self, _keyword: str) -> If:
        clauses = []
        condition = self.sequence()
        self._expect_keyword("then")
        clauses.append((condition, self.sequence()))
        otherwise = None
        while True:
            keyword = self._peek_keyword()
            if keyword == "elif":
                self.i += 1
                condition = self.sequence()
                self._expect_keyword("then")
                clauses.append((condition, self.sequence()))
            elif keyword == "else":
                self.i += 1
                otherwise = self.sequence()
            else:
                self._expect_keyword("fi")
                return If(tuple(clauses), otherwise)

    def _for(self, _keyword: str) -> For:
        tok = self._peek()
        name = tok.literal() if isinstance(tok, Word) else None
        if not name or not _NAME_RE.fullmatch(name):
            raise ShellSyntaxError("bad 'for' variable")
        self.i += 1
        words: tuple[Word, ...] | None = None
        self._skip_newlines()
        if self._peek_keyword() == "in":
            self.i += 1
            collected = []
            while isinstance(self._peek(), Word):
                collected.append(self._peek())
                self.i += 1
            words = tuple(collected)
        self._expect_keyword("do")
        body = self.sequence()
        self._expect_keyword("done")
        return For(name, words, body)

    def _while(self, keyword: str) -> While:
        condition = self.sequence()
        self._expect_keyword("do")
        body = self.sequence()
        self._expect_keyword("done")
        return While(condition, body, until=keyword == "until")


def parse(command: str) -> Sequence:
    """Parse a whole command line; raises ShellSyntaxError before anything runs."""
    return _Parser(_Lexer(command).run()).parse()


# ==== execution =======================================================================================


class _Streams:
    """Where descriptors 0, 1 and 2 of one command point: stdin bytes and two output buffers."""

    def __init__(self, stdin: bytes | PendingInput, out: bytearray, err: bytearray) -> None:
        self.stdin, self.out, self.err = stdin, out, err

    def copy(self) -> _Streams:
        return _Streams(self.stdin, self.out, self.err)


@dataclass
class _Shell:
    """The state of one `sh -c` run: variables, working directory, last status."""

    phone: Any
    env: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV))
    cwd: str = "/"
    status: int = 0
    stdout: bytearray = field(default_factory=limits.Stream)
    stderr: bytearray = field(default_factory=limits.Stream)
    substitution_status: int | None = None  # status of the last $(...) in the command being expanded
    depth: int = 0  # how many `sh -c` / `eval` / `$(...)` levels this shell is nested in
    env_bytes: int = field(default_factory=lambda: sum(map(len, DEFAULT_ENV.values())))
    exec_redirects: list[_Redirected] = field(default_factory=list)  # `exec >FILE`: in force until the end

    # ---- entry points ------------------------------------------------------------------------------
    def run_script(
        self, script: str, stdin: bytes | PendingInput, out: bytearray, err: bytearray, top_level: bool = False
    ) -> int:
        """Parse and run `script` with the given streams; `exit` ends it (and only it)."""
        if self.depth > limits.DEPTH_LIMIT:  # `sh x.sh` running itself: a real phone runs out of memory
            limits.check_size(self.depth, limits.DEPTH_LIMIT)
        limits.check()
        try:
            tree = parse(script)
        except ShellSyntaxError as e:
            err += f"{SH}: syntax error: {e}\n".encode()
            self.status = 1 if top_level else 2
            return self.status
        held = len(self.exec_redirects)
        try:
            self._sequence(tree, _Streams(stdin, out, err))
        except ShellExit as e:
            self.status = e.code
        finally:
            while len(self.exec_redirects) > held:  # files `exec >FILE` opened get what was written
                self.exec_redirects.pop().flush()
        return self.status

    def subshell(self) -> _Shell:
        return _Shell(self.phone, dict(self.env), self.cwd, self.status, depth=self.depth + 1, env_bytes=self.env_bytes)

    def set_var(self, name: str, value: str) -> None:
        """Assign a variable, within the memory a shell may hold (a real one dies with `out of memory`)."""
        old = self.env.get(name)
        total = self.env_bytes + len(value) - (len(old) if old is not None else 0)
        limits.check_size(len(value), limits.VALUE_LIMIT)
        limits.check_size(total, limits.ENV_LIMIT)
        self.env[name] = value
        self.env_bytes = total

    def unset_var(self, name: str) -> None:
        old = self.env.pop(name, None)
        if old is not None:
            self.env_bytes -= len(old)

    def _locked(self) -> Any:
        """The phone's lock, held around each step that reads or changes the phone."""
        lock = getattr(self.phone, "lock", None)
        return lock if lock is not None else contextlib.nullcontext()

    # ---- tree walking --------------------------------------------------------------------------------
    def _sequence(self, seq: Sequence, io: _Streams) -> int:
        for item in seq.items:
            self._and_or(item, io)
        return self.status

    def _and_or(self, node: AndOr, io: _Streams) -> int:
        limits.check()
        status = self._pipeline(node.first, io)
        for op, pipeline in node.rest:
            if (op == "&&") == (status == 0):
                status = self._pipeline(pipeline, io)
        return status

    def _pipeline(self, node: Pipeline, io: _Streams) -> int:
        stdin = io.stdin
        status = 0
        for n, command in enumerate(node.commands):
            last = n == len(node.commands) - 1
            # A lone command gets the list's own streams, so `exec >FILE` can redirect the commands after it.
            streams = io if len(node.commands) == 1 else _Streams(stdin, io.out if last else limits.Stream(), io.err)
            if last:
                status = self._command(command, streams)
            else:
                try:  # every part but the last runs in a subshell: `exit` ends only that part
                    status = self._command(command, streams)
                except ShellExit as e:
                    status = e.code
                stdin = bytes(streams.out)
        if node.negate:
            status = 0 if status else 1
        self.status = status
        return status

    def _command(self, node: Simple | Compound, io: _Streams) -> int:
        try:
            return self._run_command(node, io)
        except CommandError as e:  # an expansion error such as ${x:?} or a bad $((...))
            io.err += f"{e.message}\n".encode()
            self.status = e.code
            return e.code

    def _run_command(self, node: Simple | Compound, io: _Streams) -> int:
        if isinstance(node, Simple):
            return self._simple(node, io)
        streams = self._redirected(node.redirects, io)
        if streams is None:
            return 1
        body = node.node
        try:
            runner = _COMPOUND_RUNNERS[type(body)]
            status = runner(self, body, streams.io)
        finally:
            streams.flush()
        if streams.failed:
            self.status = status = 1
        return status

    def _if(self, node: If, io: _Streams) -> int:
        for condition, body in node.clauses:
            if self._sequence(condition, io) == 0:
                return self._sequence(body, io)
        if node.otherwise is not None:
            return self._sequence(node.otherwise, io)
        self.status = 0
        return 0

    def _for(self, node: For, io: _Streams) -> int:
        values = [] if node.words is None else [v for w in node.words for v in self.expand(w, io)]
        self.status = 0
        for value in values:
            limits.check()
            self.set_var(node.name, value)
            self._sequence(node.body, io)
        return self.status

    def _while(self, node: While, io: _Streams) -> int:
        status = 0
        while (self._sequence(node.condition, io) == 0) != node.until:
            limits.check()
            status = self._sequence(node.body, io)
        self.status = status
        return status

    def _group(self, node: Group, io: _Streams) -> int:
        if not node.subshell:
            return self._sequence(node.body, io)
        sub = self.subshell()
        try:
            status = sub._sequence(node.body, io)
        except ShellExit as e:
            status = e.code
        self.status = status
        return status

    # ---- simple commands -------------------------------------------------------------------------
    def _simple(self, node: Simple, io: _Streams) -> int:
        assignments, words = _split_assignments(node.words)
        self.substitution_status = None
        values = {name: self.expand_single(value, io) for name, value in assignments}
        argv = [arg for w in words for arg in self.expand(w, io)]
        streams = self._redirected(node.redirects, io)
        if streams is None:
            self.status = 1
            return 1
        if argv == ["exec"]:  # `exec` with only redirections: they apply to the shell from now on
            io.stdin, io.out, io.err = streams.io.stdin, streams.io.out, streams.io.err
            self.exec_redirects.append(streams)
            self.status = 0
            return 0
        try:
            if not argv:  # only assignments: the status is that of the last command substitution
                for name, value in values.items():
                    self.set_var(name, value)
                self.status = self.substitution_status or 0
            else:
                self.status = self.run_argv(argv, streams.io)
        finally:
            streams.flush()
        if streams.failed:
            self.status = 1
        return self.status

    def run_argv(self, argv: list[str], io: _Streams) -> int:
        """Run one already-expanded command: a shell builtin, a device command, or `not found`."""
        name = argv[0]
        builtin = _BUILTINS.get(name)
        if builtin is not None:
            return builtin(self, argv[1:], io)
        command = COMMANDS.get(_command_name(name))
        if command is None:
            io.err += f"{SH}: {name}: inaccessible or not found\n".encode()
            return 127
        limits.check()
        lock = self._locked()

        def unlocked(run: Callable[[], int]) -> int:
            # A command that runs a script (`sh -c`, `su -c`, `find -exec`) lets go of the phone meanwhile:
            # the script takes the lock around its own steps, so its sleeps and loops block no one.
            if lock is not None and not isinstance(lock, contextlib.nullcontext):
                lock.release()
                try:
                    return run()
                finally:
                    lock.acquire()
            return run()

        ctx = Context(
            phone=self.phone,
            input=io.stdin,
            stdout=io.out,
            stderr=io.err,
            cwd=self.cwd,
            env=self.env,
            run_script=lambda script: unlocked(lambda: self.subshell().run_script(script, io.stdin, io.out, io.err)),
            run_argv=lambda args: unlocked(lambda: self.run_argv(args, io)),
            unlocked=unlocked,
            flush=lambda: _send_streamed(io.out),
        )
        if command in _UNLOCKED_COMMANDS:  # `sleep` only waits: holding the phone would stall everyone
            lock = contextlib.nullcontext()
        try:
            with lock:
                try:
                    return command(ctx, argv[1:]) & 0xFF
                finally:
                    changed = getattr(self.phone, "changed", None)
                    if changed is not None and not isinstance(lock, contextlib.nullcontext):
                        changed()  # the command may have changed files an app shows
        except CommandError as e:
            io.err += f"{e.message}\n".encode()
            return e.code
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            # A full disk under a command that writes files (cp, touch, mv, dd): toybox's perror_msg.
            io.err += f"{posixpath.basename(name)}: {e.filename}: No space left on device\n".encode()
            return 1

    # ---- expansion ---------------------------------------------------------------------------------
    def expand(self, word: Word, io: _Streams) -> list[str]:
        """Expand one word into fields: parameters, command substitution, splitting, ~ and globs."""
        fields: list[list[tuple[str, bool]]] = []  # each field: (text, glob-active) runs
        current: list[tuple[str, bool]] = []
        started = False
        ifs = self.env.get("IFS", " \t\n")
        parts = _expand_tilde(word.parts, self.env.get("HOME", "/"))
        for part in parts:
            if part.kind in ("lit", "q"):
                current.append((part.text, part.kind == "lit"))
                started = True
                continue
            value = self._part_value(part, io)
            if part.kind.startswith("q"):
                current.append((value, False))
                started = True
                continue
            # Unquoted expansion results are split on IFS whitespace into separate fields.
            pieces = re.split(f"[{re.escape(ifs)}]+", value) if ifs else [value]
            for k, piece in enumerate(pieces):
                if k > 0 and (started or current):
                    fields.append(current)
                    current, started = [], False
                if piece:
                    current.append((piece, False))
                    started = True
        if started or current:
            fields.append(current)
        limits.check_size(sum(len(t) for f in fields for t, _ in f), limits.VALUE_LIMIT)
        with self._locked():
            return [v for f in fields for v in self._glob_field(f)]

    def expand_single(self, word: Word, io: _Streams) -> str:
        """Expand without field splitting or globbing (assignment values, redirection targets)."""
        parts = _expand_tilde(word.parts, self.env.get("HOME", "/"))
        values = [p.text if p.kind in ("lit", "q") else self._part_value(p, io) for p in parts]
        limits.check_size(sum(map(len, values)), limits.VALUE_LIMIT)
        return "".join(values)

    def _part_value(self, part: Part, io: _Streams) -> str:
        kind = part.kind.removeprefix("q")
        if kind == "var":
            return self._parameter(part.text, io)
        if kind == "cmd":
            out = limits.Stream()
            sub = self.subshell()
            self.substitution_status = sub.run_script(part.text, b"", out, io.err)
            return out.decode("utf-8", "replace").rstrip("\n")
        return self._arithmetic(part.text, io)

    def _parameter(self, body: str, io: _Streams) -> str:
        special = {"?": str(self.status), "$": SHELL_PID, "#": "0", "!": "", "@": "", "*": "", "-": "h"}
        if body in special:
            return special[body]
        if body == "0":
            return SH
        if body.isdigit():
            return ""
        if body.startswith("#"):
            return str(len(self._parameter(body[1:], io)))
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-=+?])(.*)", body, re.S)
        if not m:
            return self.env.get(body, "")
        name, op, alt = m.groups()
        value = self.env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        alt = self.expand_single(Word((Part("lit", alt),)), io) if alt else ""
        if op.endswith("-"):
            return alt if unset else value
        if op.endswith("="):
            if unset:
                self.set_var(name, alt)
            return self.env[name]
        if op.endswith("+"):
            return "" if unset else alt
        if unset:
            raise CommandError(f"{SH}: {name}: {alt or 'parameter null or not set'}", 1)
        return value

    def _arithmetic(self, expression: str, io: _Streams) -> str:
        text = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*|\?)\}?", lambda m: self._parameter(m.group(1), io), expression)
        if len(text) > _ARITH_MAX_CHARS:  # parsing it would cost far more memory than the text itself
            raise CommandError(f"{SH}: {expression[:40]}...: expression too long", 1)
        try:
            return str(_eval_arith(ast.parse(text.strip() or "0", mode="eval").body, self.env))
        except (SyntaxError, ValueError, ZeroDivisionError, RecursionError, MemoryError) as e:
            reason = "expression too deeply nested" if isinstance(e, RecursionError | MemoryError) else e
            raise CommandError(f"{SH}: {expression}: {reason}", 1) from e

    def _glob_field(self, runs: list[tuple[str, bool]]) -> list[str]:
        text = "".join(t for t, _ in runs)
        if not any(active and any(ch in t for ch in "*?[") for t, active in runs):
            return [text]
        pattern = "".join(t if active else re.sub(r"([*?\[])", r"[\1]", t) for t, active in runs)
        return _glob(self.phone.fs, self.cwd, pattern) or [text]

    # ---- redirections ------------------------------------------------------------------------------
    def _redirected(self, redirects: tuple[Redirect, ...], io: _Streams) -> _Redirected | None:
        """Apply redirections left to right; on failure print mksh's message and return None."""
        result = _Redirected(self.phone.fs, io.copy(), self._locked())
        for r in redirects:
            target = self.expand_single(r.target, io)
            with self._locked():
                error = result.apply(r.op, r.fd, target, self.cwd)
            if error:
                io.err += f"{SH}: {error}\n".encode()
                result.flush()
                return None
        return result


class _Redirected:
    """The streams of one command after its redirections, plus the files to write when it ends."""

    def __init__(self, fs: Any, io: _Streams, lock: Any = None) -> None:
        self.fs = fs
        self.io = io
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.files: list[tuple[str, bytearray, str]] = []  # (path, buffer, the name the command line gave)
        self.shell_err = io.err  # the shell's own stderr, for its messages about the redirections
        self.failed = False  # a file could not take the output (a full disk): the command's status is 1

    def _get(self, fd: int) -> bytearray:
        return self.io.err if fd == 2 else self.io.out

    def _set(self, fd: int, buf: bytearray) -> None:
        if fd == 1:
            self.io.out = buf
        elif fd == 2:
            self.io.err = buf

    def apply(self, op: str, fd: int, target: str, cwd: str) -> str | None:
        if op in (">&", "<&"):
            if target == "-":
                self._set(fd, _Discard())  # closing a descriptor: output is lost
            elif target in ("1", "2"):
                self._set(fd, self._get(int(target)))
            elif target != "0":
                return f"{target}: illegal file descriptor name"
            return None
        if op == "<":
            return self._input(target, cwd)
        if target in ("/dev/stdout", "/dev/stderr"):
            self._set(fd, self._get(1 if target == "/dev/stdout" else 2))
            return None
        if target == "/dev/null" or target.startswith("/dev/"):
            self._set(fd, _Discard())
            return None
        path = resolve_path(cwd, target)
        if self.fs.is_dir(path):
            return f"can't create {target}: Is a directory"
        if not self.fs.is_dir(posixpath.dirname(path)):
            return f"can't create {target}: No such file or directory"
        if op != ">>" or not self.fs.exists(path):
            self.fs.write(path, b"")  # `>` truncates before the command runs
        buf = limits.Stream()
        self.files.append((path, buf, target))
        self._set(fd, buf)
        return None

    def _input(self, target: str, cwd: str) -> str | None:
        if target == "/dev/null":
            self.io.stdin = b""
            return None
        path = resolve_path(cwd, target)
        if not self.fs.exists(path):
            return f"can't open {target}: No such file or directory"
        if self.fs.is_dir(path):
            return f"can't open {target}: Is a directory"
        self.io.stdin = self.fs.read(path)
        return None

    def flush(self) -> None:
        with self.lock:
            for path, buf, target in self.files:
                if buf:
                    self._append(path, bytes(buf), target)
        self.files.clear()

    def _append(self, path: str, data: bytes, target: str) -> None:
        """Write the output into its file; on a full disk, what fits is written, as write(2) does."""
        try:
            self.fs.append(path, data)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            with contextlib.suppress(OSError):
                self.fs.append(path, data[: self.fs.free()])
            self.shell_err += f"{SH}: can't create {target}: No space left on device\n".encode()
            self.failed = True


class _Discard(bytearray):
    """/dev/null: whatever is written is dropped at once, so it never costs memory."""

    def __iadd__(self, data):  # type: ignore[override]
        return self

    def extend(self, data) -> None:  # type: ignore[override]
        pass


_COMPOUND_RUNNERS: dict[type, Callable[[_Shell, Any, _Streams], int]] = {
    If: _Shell._if,
    For: _Shell._for,
    While: _Shell._while,
    Group: _Shell._group,
}


# ==== builtins (need the interpreter's own state) ===============================================


def _builtin_cd(shell: _Shell, args: list[str], io: _Streams) -> int:
    target = args[0] if args else shell.env.get("HOME", "/")
    path = resolve_path(shell.cwd, target)
    with shell._locked():
        exists, is_dir = shell.phone.fs.exists(path), shell.phone.fs.is_dir(path)
    if not exists:
        io.err += f"{SH}: cd: {path}: No such file or directory\n".encode()
        return 2
    if not is_dir:
        io.err += f"{SH}: cd: {path}: Not a directory\n".encode()
        return 2
    # The shell keeps the path as spelled (`cd /storage/emulated/0; pwd`), as sh's logical cwd does.
    shell.cwd = posixpath.normpath("/" + (target if target.startswith("/") else f"{shell.cwd}/{target}").lstrip("/"))
    return 0


def _builtin_exit(shell: _Shell, args: list[str], io: _Streams) -> int:
    if args and not re.fullmatch(r"-?\d+", args[0]):
        io.err += f"{SH}: exit: {args[0]}: bad number\n".encode()
        raise ShellExit(1)
    raise ShellExit(int(args[0]) & 0xFF if args else shell.status)


def _builtin_export(shell: _Shell, args: list[str], io: _Streams) -> int:
    for arg in args:
        if "=" in arg:
            name, value = arg.split("=", 1)
            shell.set_var(name, value)
    return 0


def _builtin_unset(shell: _Shell, args: list[str], io: _Streams) -> int:
    for name in args:
        shell.unset_var(name)
    return 0


def _builtin_eval(shell: _Shell, args: list[str], io: _Streams) -> int:
    shell.depth += 1  # `eval` of a string that evals itself must hit DEPTH_LIMIT, not Python's stack
    try:
        return shell.run_script(" ".join(args), io.stdin, io.out, io.err)
    finally:
        shell.depth -= 1


def _builtin_command(shell: _Shell, args: list[str], io: _Streams) -> int:
    if args[:1] == ["-v"]:
        found = [n for n in args[1:] if n in _BUILTINS or _command_name(n) in COMMANDS]
        for name in found:
            text = name if name in _BUILTINS else f"/system/bin/{_command_name(name)}"
            io.out += f"{text}\n".encode()
        return 0 if len(found) == len(args) - 1 else 1
    return shell.run_argv(args, io) if args else 0


def _builtin_noop(shell: _Shell, args: list[str], io: _Streams) -> int:
    return 0


def _builtin_exec(shell: _Shell, args: list[str], io: _Streams) -> int:
    """`exec CMD ARGS`: the command replaces the shell, so its status ends the script."""
    if not args:
        return 0
    raise ShellExit(shell.run_argv(args, io))


class _SinkedStream(limits.Stream):
    """The top-level stdout when the caller takes output as it comes (adbd streaming `logcat`)."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        super().__init__()
        self.sink = sink


def _send_streamed(out: bytearray) -> bool:
    """What a streaming command wrote so far goes to the host now, if its stdout is the shell's own."""
    if not isinstance(out, _SinkedStream):
        return False
    if out:
        data = bytes(out)
        del out[:]
        out.sink(data)
    return True


_UNLOCKED_COMMANDS = {COMMANDS["sleep"]}  # commands that never touch the phone and may wait long

_BUILTINS: dict[str, Callable[[_Shell, list[str], _Streams], int]] = {
    "cd": _builtin_cd,
    "exit": _builtin_exit,
    "export": _builtin_export,
    "unset": _builtin_unset,
    "eval": _builtin_eval,
    "command": _builtin_command,
    "exec": _builtin_exec,
    ":": _builtin_noop,
    "set": _builtin_noop,
    "trap": _builtin_noop,
    "wait": _builtin_noop,
}


# ==== helpers ===========================================================================================


def _command_name(name: str) -> str:
    """`ls` and `/system/bin/ls` name the same command; other paths name nothing we have."""
    if "/" not in name:
        return name
    directory, base = posixpath.split(name)
    return base if directory in BIN_DIRS else ""


def _split_assignments(words: tuple[Word, ...]) -> tuple[list[tuple[str, Word]], tuple[Word, ...]]:
    """Leading `NAME=value` words are assignments, not arguments."""
    assignments = []
    for n, word in enumerate(words):
        first = word.parts[0] if word.parts else None
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=", first.text) if first and first.kind == "lit" else None
        if not m:
            return assignments, words[n:]
        rest = Part("lit", first.text[m.end() :])
        assignments.append((m.group(1), Word((rest, *word.parts[1:]))))
    return assignments, ()


def _expand_tilde(parts: tuple[Part, ...], home: str) -> tuple[Part, ...]:
    """An unquoted leading `~` (alone or before `/`) is $HOME."""
    if parts and parts[0].kind == "lit" and parts[0].text.startswith("~"):
        text = parts[0].text
        if len(text) == 1 or text[1] == "/":
            return (Part("q", home.rstrip("/") if len(text) > 1 else home), Part("lit", text[1:]), *parts[1:])
    return parts


def _glob(fs: Any, cwd: str, pattern: str) -> list[str]:
    """Paths in the phone's filesystem matching a shell pattern, spelled as the pattern was."""
    absolute = pattern.startswith("/")
    found = [("/" if absolute else "", "/" if absolute else cwd)]  # (as displayed, real path)
    components = [c for c in pattern.split("/") if c]
    for n, component in enumerate(components):
        last = n == len(components) - 1
        matches = []
        for shown, real in found:
            if not any(ch in component for ch in "*?["):
                names = [_unescape_glob(component)]
            elif fs.is_dir(real):
                names = [
                    name
                    for name, _st in fs.listdir(real)
                    if fnmatch.fnmatchcase(name, component) and (component.startswith(".") or name[0] != ".")
                ]
            else:
                names = []
            for name in names:
                path = posixpath.join(real, name)
                if fs.exists(path) and (last or fs.is_dir(path)):
                    matches.append((shown + name if not shown or shown.endswith("/") else f"{shown}/{name}", path))
        found = matches
    result = sorted(shown for shown, _ in found)
    return [r + "/" for r in result] if pattern.endswith("/") else result


def _unescape_glob(text: str) -> str:
    return re.sub(r"\[([*?\[])\]", r"\1", text)


_ARITH_MAX_CHARS = 1 << 16
_ARITH_OPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: int(a / b),  # sh division truncates toward zero
    ast.FloorDiv: lambda a, b: int(a / b),
    ast.Mod: lambda a, b: a - b * int(a / b),
    ast.LShift: lambda a, b: a << (b & 31),  # C on a 32-bit type: the count is taken modulo 32
    ast.RShift: lambda a, b: a >> (b & 31),
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}
_ARITH_COMPARE: dict[type, Callable[[int, int], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _int32(value: int) -> int:
    """mksh's arithmetic is 32-bit signed with wrap-around (mksh_ari_t), so no result grows without bound."""
    return (value + 0x80000000) % 0x100000000 - 0x80000000


def _eval_arith(node: ast.AST, env: dict[str, str]) -> int:
    """Integer arithmetic for `$((...))` over a Python AST restricted to numbers, names and operators."""
    return _int32(_eval_arith_node(node, env))


def _eval_arith_node(node: ast.AST, env: dict[str, str]) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        value = env.get(node.id, "0") or "0"
        return int(value) if re.fullmatch(r"-?\d+", value) else 0
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH_OPS:
        return _ARITH_OPS[type(node.op)](_eval_arith(node.left, env), _eval_arith(node.right, env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        value = _eval_arith(node.operand, env)
        return {ast.USub: -value, ast.UAdd: value, ast.Not: int(not value)}[type(node.op)]
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _ARITH_COMPARE:
        compare = _ARITH_COMPARE[type(node.ops[0])]
        return int(compare(_eval_arith(node.left, env), _eval_arith(node.comparators[0], env)))
    raise ValueError("syntax error in expression")
