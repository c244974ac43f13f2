"""The `pip install` steps written in the README, the Dockerfile and the launcher configs, in a form
that compares equal when pip would do the same thing.

`pip install --no-cache-dir -r requirements.lock` and `python -m pip install -r requirements.lock`
are the README's `pip install -r requirements.lock`; `-e .` and `.` install the same code (the
image keeps its checkout), so both read as `.`.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

# Flags that change how pip works, not what ends up installed.
IGNORED_FLAGS = {"--no-cache-dir", "-q", "--quiet", "--disable-pip-version-check", "--no-input"}
OPTIONS_WITH_VALUE = {"-r": "-r", "--requirement": "-r", "-c": "-c", "--constraint": "-c"}
CONTROL = {"&&", "||", ";", "|", "(", ")", "&", "\n"}
SHELL_FENCES = {"bash", "sh", "shell", "console"}


def simple_commands(script: str) -> list[list[str]]:
    """Split a shell snippet into its simple commands (word lists), at &&, ||, ;, |, ( ) and newlines."""
    lexer = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace = " \t\r"  # keep newlines: they end commands too
    lexer.commenters = "#"
    commands, current = [], []
    for token in lexer:
        if token in CONTROL or set(token) <= set(";&|()\n"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def pip_install(words: list[str]) -> tuple[str, ...] | None:
    """The canonical form of a `pip install` command, or None if the words are something else."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):  # VAR=value prefixes
        words = words[1:]
    if words[:1] and re.fullmatch(r"(\S*/)?python(3(\.\d+)?)?", words[0]) and words[1:3] == ["-m", "pip"]:
        words = ["pip"] + words[3:]
    if len(words) < 2 or not re.fullmatch(r"(\S*/)?pip3?(\.\d+)?", words[0]) or words[1] != "install":
        return None
    args, rest = [], iter(words[2:])
    for word in rest:
        if word in IGNORED_FLAGS:
            continue
        if word in ("-e", "--editable"):
            continue  # the next word is the target, kept as is
        if word in OPTIONS_WITH_VALUE:
            args.append(f"{OPTIONS_WITH_VALUE[word]} {next(rest, '')}")
            continue
        args.append(word)
    return ("pip install", *sorted(args))


def pip_installs(scripts: list[str]) -> list[tuple[str, ...]]:
    """Every `pip install` in the scripts, in order."""
    found = []
    for script in scripts:
        for words in simple_commands(script):
            if (canonical := pip_install(words)) is not None:
                found.append(canonical)
    return found


def dockerfile_run_scripts(path: Path) -> list[str]:
    """The shell scripts of the Dockerfile's RUN instructions, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    scripts = []
    for line in text.splitlines():
        match = re.match(r"\s*RUN\s+(?:--\S+\s+)*(.*)", line, flags=re.IGNORECASE)
        if not match:
            continue
        body = match.group(1).strip()
        scripts.append(" ".join(json.loads(body)) if body.startswith("[") else body)
    return scripts


def markdown_shell_blocks(path: Path) -> list[str]:
    """The bodies of the fenced ```bash/sh/shell/console blocks of a Markdown file, prompts removed."""
    blocks = []
    for fence, body in re.findall(r"^```[ \t]*(\w*)[^\n]*\n(.*?)^```", path.read_text(), flags=re.MULTILINE | re.DOTALL):
        if fence.lower() in SHELL_FENCES:
            blocks.append(re.sub(r"^\s*\$ ", "", body, flags=re.MULTILINE))
    return blocks


def is_subsequence(needle: list, haystack: list) -> bool:
    it = iter(haystack)
    return all(any(item == other for other in it) for item in needle)
