"""A start command's shell script, parsed with offsets so that steps can be cut out of it.

:func:`parse` reads the script with tree-sitter's bash grammar. :class:`Script` lists its simple
commands in the order they are written, each with its words and where it is in the text;
:meth:`Script.without` returns the script less some of them, sliced from the original text: the
quoting, ``$(…)``, comments and line breaks of what is kept are the user's, byte for byte. Only
the commands cut and the separators that joined them go; ``exec`` may be put before the program.

A command can be cut where the shell's meaning of the rest stays the same: a step of an ``&&``/
``||`` chain or of a list (``;``, ``&``, line breaks), at the top of the script or inside
``( … )`` and ``{ …; }``. One inside a pipeline, an ``if``, a loop or a function cannot:
:meth:`Script.without` raises :class:`UncuttableStep` naming what holds it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

_BASH = Language(tree_sitter_bash.language())
#: Nodes that hold a list of statements whose steps can be cut, and the nodes a chain is made of.
_BODIES = frozenset({"subshell", "compound_statement"})
_COMMANDS = frozenset({"command", "declaration_command"})
_TERMINATORS = frozenset({";", "&", ";;", "(", ")", "{", "}"})
#: Words for what holds a command that cannot be cut, by node type.
_HOLDERS = {
    "pipeline": "a pipeline (`|`)",
    "if_statement": "an `if`",
    "while_statement": "a loop",
    "for_statement": "a loop",
    "c_style_for_statement": "a loop",
    "case_statement": "a `case`",
    "function_definition": "a function",
    "negated_command": "a `!` command",
    "redirected_statement": "a redirected group (`{ …; } > file`)",
}
#: Nodes whose commands are not steps of the script (they run inside a word).
_INSIDE_WORDS = frozenset(
    {"command_substitution", "process_substitution", "string", "expansion", "heredoc_body"}
)


class InvalidScript(ValueError):
    """The script is not shell syntax the parser reads (an unterminated quote, a stray ``)``)."""

    def __init__(self, line: int, column: int, near: str) -> None:
        super().__init__(f"the shell cannot parse it (line {line}, column {column}): {near!r}")
        self.line, self.column, self.near = line, column, near


class UncuttableStep(ValueError):
    """A command to cut is part of a construct that would mean something else without it."""

    def __init__(self, command: str, holder: str) -> None:
        super().__init__(f"`{command}` is part of {holder}")
        self.command, self.holder = command, holder


@dataclass(frozen=True)
class Word:
    """A word of a command: its text once quotes are removed (expansions kept as written, so
    ``"$(which python)"`` is ``$(which python)``), and its byte offsets in the script."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Command:
    """A simple command: its words (assignments first, redirections left out), its byte offsets
    (redirections included), and what holds it when it cannot be cut (``""`` when it can)."""

    index: int
    words: tuple[Word, ...]
    start: int
    end: int
    source: str  # its text as written
    holder: str = ""
    redirected: bool = False
    writes: tuple[str, ...] = ()  # the files its output redirections (``>``, ``>>``) write


class _Piece(NamedTuple):
    """The nodes of one element of a chain (a command and the redirections the grammar put
    elsewhere, or a pipeline's parts), and what makes them one: ``""`` (the first node alone),
    ``redirected`` or ``pipeline``."""

    nodes: tuple[Node, ...]
    kind: str


@dataclass(frozen=True)
class _Unit:
    """One element of an ``&&``/``||`` chain: a command, a group (``( … )``, ``{ …; }``) with
    its statements, or anything else (kept as it is)."""

    start: int
    end: int
    command: int | None = None
    body: tuple[_Statement, ...] | None = None


@dataclass(frozen=True)
class _Statement:
    """An ``&&``/``||`` chain ended by ``;``, ``&`` or a line break; ``operators[i]`` joins
    ``units[i]`` and ``units[i + 1]``."""

    units: tuple[_Unit, ...]
    operators: tuple[str, ...]
    start: int
    end: int
    background_end: int | None  # the end of its ``&``, when it runs in the background
    next_start: int | None  # where what follows it (a statement, a comment) starts


@dataclass(frozen=True)
class Kept:
    """What is left of a script: its text, and whether the program alone is left (one command,
    not redirected, with nothing but ``exec`` before the program's name)."""

    text: str
    alone: bool
    commands: tuple[Command, ...]  # the commands left in it


@dataclass
class _Reader:
    """Builds the statements and the commands of a parsed script."""

    data: bytes
    commands: list[Command] = field(default_factory=list)

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode(errors="replace")

    def statements(self, node: Node) -> tuple[_Statement, ...]:
        children = [c for c in node.children if c.is_named]
        statements: list[_Statement] = []
        for i, child in enumerate(children):
            if child.type == "comment":
                continue
            following = children[i + 1].start_byte if i + 1 < len(children) else None
            amp = child.next_sibling
            background = amp.end_byte if amp is not None and amp.type == "&" else None
            units, operators = self.chain(child)
            statements.append(
                _Statement(
                    units, operators, child.start_byte, child.end_byte, background, following
                )
            )
        return tuple(statements)

    def chain(self, node: Node) -> tuple[tuple[_Unit, ...], tuple[str, ...]]:
        """The units of an ``&&``/``||`` chain and the operators between them."""
        pieces, operators = self.pieces(node)
        return tuple(self.unit(piece) for piece in pieces), operators

    def pieces(self, node: Node) -> tuple[list[_Piece], tuple[str, ...]]:
        """The elements of an ``&&``/``||`` chain as the shell groups them. The grammar hangs
        the redirections of a chain's last command on the whole chain (``a && b > log``), and
        puts a pipeline above the chain before it (``a && b | c``); the shell binds both
        tighter than ``&&``: they belong to the last element."""
        if node.type == "list":
            pieces: list[_Piece] = []
            operators: tuple[str, ...] = ()
            for child in node.children:
                if child.type in ("&&", "||"):
                    operators += (child.type,)
                elif child.is_named and child.type != "comment":
                    more, between = self.pieces(child)
                    pieces, operators = [*pieces, *more], (*operators, *between)
            return pieces, operators
        first = node.children[0] if node.children else None
        if node.type in ("redirected_statement", "pipeline") and first is not None:
            inner, operators = self.pieces(first)
            if len(inner) > 1:
                last = inner[-1]
                kind = "pipeline" if node.type == "pipeline" else last.kind or "redirected"
                grown = _Piece((*last.nodes, *node.children[1:]), kind)
                return [*inner[:-1], grown], operators
        return [_Piece((node,), "")], ()

    def unit(self, piece: _Piece) -> _Unit:
        main, start, end = piece.nodes[0], piece.nodes[0].start_byte, piece.nodes[-1].end_byte
        if piece.kind == "pipeline":
            for node in piece.nodes:
                self.held(node, _HOLDERS["pipeline"])
            return _Unit(start, end)
        redirects = list(piece.nodes[1:])
        if main.type == "redirected_statement":
            body = main.child_by_field_name("body")
            redirects += [c for c in main.children if c.type.endswith("redirect")]
            main = body if body is not None else main
        if main.type in _COMMANDS:
            return _Unit(start, end, command=self.command(main, start, end, redirects))
        if main.type in _BODIES and not redirects:
            return _Unit(start, end, body=self.statements(main))
        holder = "redirected_statement" if redirects else main.type
        for node in piece.nodes:
            self.held(node, _HOLDERS.get(holder, f"a {holder.replace('_', ' ')}"))
        return _Unit(start, end)

    def held(self, node: Node, holder: str) -> None:
        """The commands in a construct, none of which can be cut (those inside a word are not
        steps of the script)."""
        if node.type in _COMMANDS:
            self.command(node, node.start_byte, node.end_byte, [], holder=holder)
            return
        for child in node.children:
            if child.type not in _INSIDE_WORDS:
                self.held(child, holder)

    def command(
        self, node: Node, start: int, end: int, redirects: list[Node], *, holder: str = ""
    ) -> int:
        """Record a simple command spanning ``start:end`` (its redirections included)."""
        parts: list[Node] = []
        for child in node.children:
            if child.type == "command_name":
                parts += [c for c in child.children if c.is_named]
            elif child.type.endswith("redirect"):
                redirects.append(child)
            elif child.is_named or node.type == "declaration_command":  # its `export`
                parts.append(child)
        words = tuple(Word(self.unquoted(p), p.start_byte, p.end_byte) for p in parts)
        index = len(self.commands)
        self.commands.append(
            Command(
                index,
                words,
                start,
                end,
                self.data[start:end].decode(errors="replace"),
                holder,
                bool(redirects),
                tuple(w for r in redirects for w in self.written(r)),
            )
        )
        return index

    def written(self, redirect: Node) -> list[str]:
        """The file an output redirection writes (none for ``2>&1`` or an input)."""
        operator = next((c.type for c in redirect.children if not c.is_named), "")
        destination = redirect.child_by_field_name("destination")
        if operator not in (">", ">>", "&>", "&>>", ">|") or destination is None:
            return []
        return [self.unquoted(destination)]

    def unquoted(self, node: Node) -> str:
        """The word as the program gets it, expansions left as written."""
        text = self.text(node)
        if node.type == "raw_string":
            return text[1:-1]
        if node.type == "string":
            return re.sub(r'\\([$`"\\\n])', r"\1", text[1:-1])
        if node.type == "word":
            return re.sub(r"\\(.)", r"\1", text.replace("\\\n", ""))
        if node.type in ("concatenation", "variable_assignment"):
            parts, at = [], node.start_byte
            for child in node.children:
                parts += [self.data[at : child.start_byte].decode(), self.unquoted(child)]
                at = child.end_byte
            return "".join(parts) + self.data[at : node.end_byte].decode()
        return text


def _first_error(node: Node) -> Node | None:
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing:
            return _first_error(child)
    return None


@dataclass(frozen=True)
class Script:
    """A parsed shell script: its text and its simple commands, in the order written."""

    text: str
    commands: tuple[Command, ...]
    statements: tuple[_Statement, ...]

    def without(
        self,
        cut: Collection[int],
        *,
        trims: Mapping[int, tuple[int, int]] | None = None,
        exec_at: int | None = None,
    ) -> Kept:
        """The script less the commands ``cut`` (by index) and their separators, less each
        byte span of ``trims`` (``uv run `` before the program), with ``exec`` put before
        command ``exec_at`` when it is the last step (``exec env`` before assignments), so that
        the program, not the shell, gets signals. :class:`UncuttableStep` when a command to cut
        is held by a construct."""
        for index in cut:
            if self.commands[index].holder:
                command = self.commands[index]
                raise UncuttableStep(command.source, command.holder)
        edit = _Edit(self, frozenset(cut))
        edit.statements(self.statements)
        for span in (trims or {}).values():
            edit.spans.append((*span, ""))
        alone = False
        if exec_at is not None:
            alone = edit.exec_before(exec_at)
        data = self.text.encode()
        out, at = [], 0
        for start, end, insert in sorted(edit.spans):
            out += [data[at:start], insert.encode()]
            at = max(at, end)
        out.append(data[at:])
        left = tuple(
            c
            for c in self.commands
            if not any(s <= c.start and c.end <= e for s, e, _ in edit.spans if s < e)
        )
        return Kept(b"".join(out).decode(errors="replace"), alone, left)


@dataclass
class _Edit:
    """The byte spans to replace (start, end, new text) to cut commands out of a script."""

    script: Script
    cut: frozenset[int]
    spans: list[tuple[int, int, str]] = field(default_factory=list)

    def gone(self, statement: _Statement) -> list[bool]:
        """Which units of a chain go: those cut, groups all of whose statements go, and what an
        ``||`` joins to them (it ran only when the install failed, which now it never does)."""
        gone: list[bool] = []
        succeeded = False
        for i, unit in enumerate(statement.units):
            if i and succeeded and statement.operators[i - 1] == "||":
                gone.append(True)
                continue
            if unit.command is not None:
                gone.append(unit.command in self.cut)
            else:
                gone.append(unit.body is not None and not self.kept(unit.body))
            succeeded = gone[-1]
        return gone

    def kept(self, statements: tuple[_Statement, ...]) -> list[_Statement]:
        return [s for s in statements if not all(self.gone(s))]

    def statements(self, statements: tuple[_Statement, ...]) -> None:
        """Cut the statements all of whose units go, with what separates them from the next
        one (from the one before, for the last ones), and the units that go from the others."""
        kept = self.kept(statements)
        previous: _Statement | None = None
        for statement in statements:
            if statement in kept:
                self.chain(statement)
                previous = statement
            elif statement.next_start is not None and kept and kept[-1].start > statement.start:
                self.spans.append((statement.start, statement.next_start, ""))
            else:
                start = statement.start if previous is None else _end(previous)
                self.spans.append((start, _end(statement), ""))

    def chain(self, statement: _Statement) -> None:
        """Cut the units that go from a chain that stays, with the operator before each (after
        it, for the first ones)."""
        units, gone = statement.units, self.gone(statement)
        first = gone.index(False)
        if first:
            self.spans.append((units[0].start, units[first].start, ""))
        previous = units[first]
        for unit, is_gone in zip(units[first:], gone[first:], strict=True):
            if is_gone:
                self.spans.append((previous.end, unit.end, ""))
            else:
                previous = unit
                if unit.body is not None:
                    self.statements(unit.body)

    def exec_before(self, index: int) -> bool:
        """Put ``exec`` before command ``index`` when it is the script's last step (``exec env``
        before assignments); whether it is then all that is left, not redirected."""
        command = self.script.commands[index]
        kept = self.kept(self.script.statements)
        if not kept or command.holder or kept[-1].background_end is not None:
            return False
        last = kept[-1]
        units = [u for u, g in zip(last.units, self.gone(last), strict=True) if not g]
        if units[-1].command != index or not command.words:
            return False
        words = [w.text for w in command.words]
        prefix = words[: _program_at(words)]
        alone = len(kept) == 1 and len(units) == 1 and not command.redirected
        alone = alone and all(w == "exec" for w in prefix)
        if "exec" not in prefix:
            assigns = "=" in words[0] and not words[0].startswith("-")
            insert = "exec env " if assigns else "exec "
            self.spans.append((command.words[0].start, command.words[0].start, insert))
        return alone


def _end(statement: _Statement) -> int:
    return statement.background_end or statement.end


def _program_at(words: list[str]) -> int:
    """Where the program's name is, after ``exec``, ``env`` and assignments."""
    i = 0
    while i < len(words) and (
        words[i] in ("exec", "env") or ("=" in words[i] and not words[i].startswith("-"))
    ):
        i += 1
    return i


def parse(text: str) -> Script:
    """``text`` parsed; :class:`InvalidScript` where the parser finds an error."""
    data = text.encode()
    tree = Parser(_BASH).parse(data)
    error = _first_error(tree.root_node) if tree.root_node.has_error else None
    if error is not None:
        line, column = error.start_point
        near = data[error.start_byte : error.start_byte + 40].decode(errors="replace")
        raise InvalidScript(line + 1, column + 1, near or data[-40:].decode(errors="replace"))
    reader = _Reader(data)
    statements = reader.statements(tree.root_node)
    return Script(text, tuple(reader.commands), statements)
