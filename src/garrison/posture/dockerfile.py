"""Dockerfiles as posture resources: a parser of the Dockerfile syntax BuildKit accepts.

Files are found by the posture inputs (:mod:`garrison.posture.inputs`: ``Dockerfile``, ``Dockerfile.*``,
``*.Dockerfile``, ``Containerfile`` in folders), which call :func:`resources_from_dockerfile`.

What the parser understands (the reference is BuildKit's ``frontend/dockerfile/parser`` and
``instructions``): the ``# syntax=`` and ``# escape=`` parser directives; line continuations with the
escape character (comment lines and blank lines inside a continued instruction are dropped, as BuildKit
does); heredocs (``RUN <<EOF``, ``<<-EOF`` strips leading tabs, a quoted ``<<"EOF"`` is not expanded,
several per instruction, also after ``COPY``/``ADD``); the JSON (exec) and shell forms of ``RUN``,
``CMD``, ``ENTRYPOINT``, ``SHELL`` and ``HEALTHCHECK``; ``--flag=value`` options; ``ARG``/``ENV``
substitution (``$V``, ``${V}``, ``${V:-default}``, ``${V-default}``, ``${V:+alt}``, ``${V+alt}``) in the
instructions where Docker applies it (not in ``RUN``/``CMD``/``ENTRYPOINT``, which the shell expands);
global ``ARG`` before the first ``FROM`` for ``FROM`` lines; and multi-stage builds (``FROM … AS name``,
``FROM name`` and ``COPY --from=name`` of an earlier stage).

The resource is one document per Dockerfile (kind ``Dockerfile``), shaped for the check language:
every stage with its base image split into repository, tag and digest, its instructions (command, line
range, arguments, flags, exec form) and, for each ``RUN``, the simple commands of its shell text split on
``&&``, ``||``, ``;`` and ``|`` (so a check can ask about ``apt-get install`` without ``-y`` without a
regular expression over the whole line). ``final`` is the stage that becomes the image.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from garrison.posture.resources import Resource

#: Instructions whose arguments Docker expands with ARG/ENV values (BuildKit's ``replaceEnvAllowed``).
EXPANDED = frozenset(
    {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG"}
)
#: Instructions with an exec (JSON array) form.
EXEC_FORM = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "ADD", "COPY", "VOLUME"})
#: The largest Dockerfile read (a Dockerfile is a few KiB; this bounds memory on a mistaken file).
MAX_BYTES = 4 * 1024 * 1024

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)\s*(?:\"([^\"]+)\"|'([^']+)'|([A-Za-z_][A-Za-z0-9_]*))")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\||\n)\s*")


class DockerfileError(ValueError):
    """A Dockerfile that cannot be parsed (the message names the file and line)."""


@dataclass(frozen=True)
class Heredoc:
    name: str
    body: str
    #: False for ``<<"EOF"`` / ``<<'EOF'``: the body is not expanded.
    expand: bool


@dataclass
class Instruction:
    """One instruction as written: ``cmd`` upper-cased, ``line``/``end_line`` 1-based and inclusive."""

    cmd: str
    original: str
    line: int
    end_line: int
    #: The arguments after the command and its ``--flags`` (continuations joined, heredoc bodies apart).
    args: str
    flags: dict[str, str] = field(default_factory=dict)
    #: The exec form's argv when the arguments are a JSON array of strings, else None (shell form).
    argv: list[str] | None = None
    heredocs: list[Heredoc] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- lexing


def _directives(lines: list[str]) -> dict[str, str]:
    """Parser directives: ``# key=value`` comment lines at the very top, before anything else."""
    found: dict[str, str] = {}
    for raw in lines:
        m = _DIRECTIVE.match(raw.strip())
        if not m or m.group(1).lower() in found:
            break
        found[m.group(1).lower()] = m.group(2)
    return found


def _instructions(text: str, where: str) -> tuple[list[Instruction], str]:
    lines = text.split("\n")
    directives = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"{where}:1: escape directive must be \\ or `, not {escape!r}")
    out: list[Instruction] = []
    i = 0
    n = len(lines)
    while i < n:
        raw = lines[i].rstrip("\r")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts: list[str] = []
        cur = raw
        while True:
            body = cur.rstrip()
            if body.endswith(escape):
                parts.append(body[: -len(escape)])
                i += 1
                # Skip comment and blank lines inside the continuation, as BuildKit does.
                while i < n and (not lines[i].strip() or lines[i].strip().startswith("#")):
                    i += 1
                if i >= n:
                    break
                cur = lines[i].rstrip("\r")
                continue
            parts.append(cur)
            break
        logical = " ".join(p.strip() for p in parts if p.strip())
        cmd, _, rest = logical.partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", cmd):
            raise DockerfileError(f"{where}:{start + 1}: not an instruction: {logical[:60]!r}")
        end = i
        heredocs: list[Heredoc] = []
        upper = cmd.upper()
        if upper in ("RUN", "COPY", "ADD") and "<<" in rest:
            for m in _HEREDOC.finditer(rest):
                strip_tabs = m.group(1) == "-"
                name = m.group(2) or m.group(3) or m.group(4)
                body_lines: list[str] = []
                j = end + 1
                while j < n and lines[j].rstrip("\r").strip(" \t" if strip_tabs else "") != name:
                    line_text = lines[j].rstrip("\r")
                    body_lines.append(line_text.lstrip("\t") if strip_tabs else line_text)
                    j += 1
                if j >= n:
                    raise DockerfileError(f"{where}:{start + 1}: heredoc <<{name} is never closed")
                heredocs.append(Heredoc(name, "\n".join(body_lines) + "\n", expand=m.group(4) is not None))
                end = j
        i = end + 1
        out.append(
            Instruction(
                cmd=upper,
                original="\n".join(lines[start : end + 1]),
                line=start + 1,
                end_line=end + 1,
                args=rest.strip(),
                heredocs=heredocs,
            )
        )
    return out, escape


def _take_flags(ins: Instruction) -> None:
    """Move leading ``--name=value`` options (``RUN --mount``, ``COPY --from``, ``FROM --platform``…) out
    of the arguments. ``HEALTHCHECK`` options precede ``CMD``; ``RUN --mount`` may repeat (joined by ``,;``)."""
    rest = ins.args
    while rest.startswith("--"):
        token, _, after = rest.partition(" ")
        m = _FLAG.match(token)
        if not m:
            break
        name, value = m.group(1).lower(), m.group(2) if m.group(2) is not None else "true"
        ins.flags[name] = f"{ins.flags[name]};{value}" if name in ins.flags else value
        rest = after.lstrip()
    ins.args = rest
    if ins.cmd in EXEC_FORM and rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            return
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            ins.argv = value


# ----------------------------------------------------------------------------------------- expansion


def expand(text: str, env: Mapping[str, str], *, keep_unset: bool = False) -> str:
    """Docker's word expansion of ``$V`` / ``${V}`` / ``${V:-d}`` / ``${V-d}`` / ``${V:+a}`` / ``${V+a}``.
    An unknown variable expands to the empty string (as in a build without ``--build-arg``), or, with
    ``keep_unset``, stays as written: a ``FROM $BASE`` whose ``ARG BASE`` has no default is an image
    chosen at build time, not an error; ``\\$`` stays a literal ``$``."""

    def one(m: re.Match[str]) -> str:
        if m.start() > 0 and text[m.start() - 1] == "\\":
            return m.group(0)
        name = m.group(1) or m.group(4)
        op, word = m.group(2), m.group(3) or ""
        value = env.get(name)
        if keep_unset and not value and op in (None, ":+", "+"):
            return m.group(0)
        if op is None:
            return value or ""
        if op == ":-":
            return value if value else word
        if op == "-":
            return value if value is not None else word
        if op == ":+":
            return word if value else ""
        return word if value is not None else ""

    return _VAR.sub(one, text).replace("\\$", "$")


def _pairs(args: str, cmd: str) -> list[tuple[str, str]]:
    """``ENV``/``LABEL``/``ARG`` arguments: ``k=v k2="v 2"`` or the legacy ``ENV k v w`` form."""
    try:
        words = shlex.split(args, posix=True)
    except ValueError:
        words = args.split()
    if not words:
        return []
    if cmd == "ENV" and "=" not in words[0]:
        key, _, value = args.partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, eq, value = w.partition("=")
        out.append((key, value if eq else ""))
    return out


# ------------------------------------------------------------------------------------- the document


def split_image(ref: str) -> dict[str, str]:
    """``registry/repo:tag@digest`` → repository, tag and digest (a port is not a tag)."""
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
    return {"repository": ref, "tag": tag, "digest": digest}


def simple_commands(script: str) -> list[dict[str, Any]]:
    """The simple commands of a shell script: split on ``&&``, ``||``, ``;``, ``|`` and newlines (outside
    quotes), each as ``argv`` with ``pipedFrom`` (the previous command's program when it pipes into this
    one) and ``sudo`` unwrapped: ``sudo apt-get install x`` is the command ``apt-get`` with ``sudo: true``."""
    out: list[dict[str, Any]] = []
    buf: list[str] = []
    quote = ""
    i = 0
    pieces: list[tuple[str, str]] = []  # (text, separator that ended it)
    while i < len(script):
        c = script[i]
        if quote:
            buf.append(c)
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < len(script):
                buf.append(script[i + 1])
                i += 1
        elif c in "'\"":
            quote = c
            buf.append(c)
        elif c == "\\" and i + 1 < len(script):
            buf.append(script[i : i + 2])
            i += 1
        elif script.startswith(("&&", "||"), i):
            pieces.append(("".join(buf), script[i : i + 2]))
            buf = []
            i += 1
        elif c in ";|\n":
            pieces.append(("".join(buf), c))
            buf = []
        else:
            buf.append(c)
        i += 1
    pieces.append(("".join(buf), ""))
    previous_sep, previous_prog = "", ""
    for text, sep in pieces:
        text = text.strip().strip("()").strip()
        try:
            argv = shlex.split(text, comments=True)
        except ValueError:
            argv = text.split()
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            argv = argv[1:]  # VAR=value prefix assignments
        sudo = False
        if argv and argv[0] == "sudo":
            sudo = True
            argv = argv[1:]
            while argv and argv[0].startswith("-"):
                argv = argv[1:]
        if argv and argv[0] in ("exec", "command", "env", "nohup", "time"):
            argv = argv[1:]
        if argv:
            prog = argv[0].rsplit("/", 1)[-1]
            out.append(
                {
                    "program": prog,
                    "argv": [prog, *argv[1:]],
                    "sudo": sudo,
                    "pipedFrom": previous_prog if previous_sep == "|" else "",
                    "text": text,
                }
            )
            previous_prog = prog
        else:
            previous_prog = ""
        previous_sep = sep
    return out


@dataclass
class Dockerfile:
    """A parsed Dockerfile: ``doc`` is the resource document the controls see."""

    path: str
    doc: dict[str, Any]
    instructions: list[Instruction]


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile ``text`` into its resource document. Raises :class:`DockerfileError`."""
    instructions, escape = _instructions(text.replace("\r\n", "\n"), path)
    global_args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    stage_names: dict[str, int] = {}
    env: dict[str, str] = {}
    for ins in instructions:
        _take_flags(ins)
        if ins.cmd == "FROM":
            words = expand(ins.args, global_args, keep_unset=True).split()
            if not words:
                raise DockerfileError(f"{path}:{ins.line}: FROM needs an image")
            image = words[0]
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
            ref = split_image(image)
            from_stage = image.lower() in stage_names
            stage: dict[str, Any] = {
                "index": len(stages),
                "name": alias,
                "line": ins.line,
                "image": {
                    "image": image,
                    **ref,
                    "platform": expand(ins.flags.get("platform", ""), global_args),
                    "stage": from_stage,
                    "scratch": image.lower() == "scratch",
                },
                "instructions": [],
                "users": [],
                "user": "",
                "env": {},
                "args": {},
                "expose": [],
                "run": [],
                "healthcheck": None,
                "shell": ["/bin/sh", "-c"],
            }
            if from_stage:
                parent = stages[stage_names[image.lower()]]
                stage["user"] = parent["user"]
                stage["env"] = dict(parent["env"])
                stage["healthcheck"] = parent["healthcheck"]
                stage["image"]["root"] = parent["image"]["root"]
            else:
                stage["image"]["root"] = image
            env = {**global_args, **stage["env"]}
            stages.append(stage)
            if alias:
                stage_names[alias.lower()] = stage["index"]
            stage["instructions"].append(_instruction_doc(ins, " ".join(words)))
            continue
        if not stages:
            if ins.cmd == "ARG":
                for key, value in _pairs(ins.args, "ARG"):
                    global_args[key] = expand(value, global_args)
                continue
            raise DockerfileError(f"{path}:{ins.line}: {ins.cmd} before the first FROM")
        stage = stages[-1]
        args = expand(ins.args, env) if ins.cmd in EXPANDED and ins.cmd not in ("ARG", "ENV") else ins.args
        item = _instruction_doc(ins, args)
        stage["instructions"].append(item)
        if ins.cmd in ("ARG", "ENV"):
            pairs = [(k, expand(v, env)) for k, v in _pairs(ins.args, ins.cmd)]
            item["pairs"] = [{"key": k, "value": v} for k, v in pairs]
            for key, value in pairs:
                if ins.cmd == "ARG":
                    if key in global_args and not value:
                        value = global_args[key]
                    stage["args"][key] = value
                    if key not in stage["env"]:  # an ENV of the same name wins over an ARG
                        env[key] = value
                else:
                    stage["env"][key] = value
                    env[key] = value
        elif ins.cmd == "USER":
            stage["user"] = args.split()[0] if args.split() else ""
            stage["users"].append(stage["user"])
        elif ins.cmd == "EXPOSE":
            for port in args.split():
                number, _, proto = port.partition("/")
                item.setdefault("ports", []).append({"port": number, "protocol": (proto or "tcp").lower()})
                stage["expose"].append({"port": number, "protocol": (proto or "tcp").lower(), "line": ins.line})
        elif ins.cmd == "HEALTHCHECK":
            none = args.strip().upper() == "NONE"
            stage["healthcheck"] = {"none": none, "line": ins.line}
        elif ins.cmd == "SHELL" and ins.argv:
            stage["shell"] = ins.argv
        elif ins.cmd == "RUN":
            scripts = [ins.args] if ins.argv is None else [" ".join(shlex.quote(a) for a in ins.argv)]
            if ins.argv is not None and len(ins.argv) >= 3 and ins.argv[1] in ("-c", "-lc", "-ec"):
                scripts = [ins.argv[2]]
            for heredoc in ins.heredocs:
                if ins.args.lstrip().startswith("<<"):
                    scripts = [heredoc.body]
                else:
                    scripts.append(heredoc.body)
            commands = [c for s in scripts for c in simple_commands(s)]
            item["commands"] = commands
            item["script"] = "\n".join(scripts)
            stage["run"].append({"line": ins.line, "script": item["script"], "commands": commands})
        elif ins.cmd in ("COPY", "ADD"):
            words = ins.argv if ins.argv is not None else args.split()
            item["sources"] = [w for w in words[:-1] if not w.startswith("<<")]
            item["destination"] = words[-1] if words else ""
    if not stages:
        raise DockerfileError(f"{path}: no FROM instruction")
    doc: dict[str, Any] = {
        "apiVersion": "garrison.dev/v1",
        "kind": "Dockerfile",
        "metadata": {"name": path},
        "escape": escape,
        "stages": stages,
        "final": stages[-1],
    }
    return Dockerfile(path=path, doc=doc, instructions=instructions)


def _instruction_doc(ins: Instruction, args: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "cmd": ins.cmd,
        "line": ins.line,
        "endLine": ins.end_line,
        "args": args,
        "flags": dict(ins.flags),
        "exec": ins.argv is not None,
        "argv": list(ins.argv) if ins.argv is not None else [],
        "heredocs": [h.name for h in ins.heredocs],
    }
    return item


def resources_from_dockerfile(text: str, source: str) -> list[Resource]:
    """The posture input's entry point (``inputs.DOCKERFILE_PARSER``): one ``Dockerfile`` resource.
    A Dockerfile that does not parse raises :class:`DockerfileError` (a ``ValueError``) naming the line."""
    if len(text) > MAX_BYTES:
        raise DockerfileError(f"{source}: larger than {MAX_BYTES} bytes, not a Dockerfile")
    return [Resource(obj=parse(text, source).doc, source=source, line=1)]
