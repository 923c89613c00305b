"""Every bad command line gets one line on stderr and a non-zero status, never a
traceback; every option of every command is documented in its ``--help``.

In-process (``aiostreams.cli.main``): nothing here starts a server or connects."""

from __future__ import annotations

import argparse
from importlib import metadata

import pytest

from aiostreams import cli

SECRET = "s3cr3t"

#: (command line, exit status, the one line printed on stderr)
BAD_INPUTS: list[tuple[list[str], int, str]] = [
    (
        ["serve", "--port", "99999"],
        2,
        (
            "aiostreams serve: error: argument --port: port must be a whole number 0-65535 "
            "(0 picks a free port), got '99999' (see aiostreams serve --help)"
        ),
    ),
    (
        ["serve", "--port", "-1"],
        2,
        (
            "aiostreams serve: error: argument --port: port must be a whole number 0-65535 "
            "(0 picks a free port), got '-1' (see aiostreams serve --help)"
        ),
    ),
    (
        ["serve", "--pace", "-1"],
        2,
        (
            "aiostreams serve: error: argument --pace: expected a number of seconds >= 0, "
            "got '-1' (see aiostreams serve --help)"
        ),
    ),
    (
        ["stream", "-X", "GET POST", "http://127.0.0.1:1/"],
        2,
        (
            "aiostreams stream: error: argument -X/--request: HTTP method must be one word such "
            "as GET or POST, got 'GET POST' (see aiostreams stream --help)"
        ),
    ),
    (
        ["stream", "-H", f"X-Key: {SECRET}\nInjected: 1", "http://127.0.0.1:1/"],
        2,
        (
            "aiostreams stream: error: argument -H/--header: the X-Key header value contains a "
            "line break or NUL (see aiostreams stream --help)"
        ),
    ),
    (
        ["stream", "-H", f"Authorization {SECRET}", "http://127.0.0.1:1/"],
        2,
        (
            "aiostreams stream: error: argument -H/--header: expected 'Name: value' (a name, a "
            "colon, the value) (see aiostreams stream --help)"
        ),
    ),
    (
        ["stream", "-H", "Bad Name: v", "http://127.0.0.1:1/"],
        2,
        (
            "aiostreams stream: error: argument -H/--header: invalid header name 'Bad Name': use "
            "letters, digits and - (see aiostreams stream --help)"
        ),
    ),
    (
        ["stream", "--last-event-id", "7\r\nInjected: 1", "http://127.0.0.1:1/"],
        2,
        (
            "aiostreams stream: error: argument --last-event-id: the Last-Event-ID header value "
            "contains a line break or NUL (see aiostreams stream --help)"
        ),
    ),
    (
        ["stream", f"user:{SECRET}@localhost:8000/events?token={SECRET}"],
        2,
        (
            "aiostreams stream: error: argument URL: URL='localhost:8000/events' cannot be used: "
            "it has no http:// or https:// scheme; use http://host:port/path or https://... "
            "(see aiostreams stream --help)"
        ),
    ),
    (
        ["stream", "ftp://127.0.0.1/events"],
        2,
        (
            "aiostreams stream: error: argument URL: URL='ftp://127.0.0.1/events' cannot be used: "
            "the scheme 'ftp' is not supported; use http://host:port/path or https://... "
            "(see aiostreams stream --help)"
        ),
    ),
    (
        ["stream", "-H", f"Authorization: Token {SECRET}", f"http://u:{SECRET}@127.0.0.1:1/"],
        2,
        (
            "aiostreams stream: error: pass credentials either in the URL (user:pass@) or in "
            "-H 'Authorization: ...', not both (see aiostreams stream --help)"
        ),
    ),
    (
        ["record", "-X", "GET POST", "http://127.0.0.1:1/", "-o", "out.jsonl"],
        2,
        (
            "aiostreams record: error: argument -X/--request: HTTP method must be one word such "
            "as GET or POST, got 'GET POST' (see aiostreams record --help)"
        ),
    ),
    (
        ["record", "127.0.0.1:1/events", "-o", "out.jsonl"],
        2,
        (
            "aiostreams record: error: argument URL: URL='127.0.0.1:1/events' cannot be used: "
            "it has no http:// or https:// scheme; use http://host:port/path or https://... "
            "(see aiostreams record --help)"
        ),
    ),
    (
        ["replay", "recording.jsonl", "--port", "70000"],
        2,
        (
            "aiostreams replay: error: argument --port: port must be a whole number 0-65535 "
            "(0 picks a free port), got '70000' (see aiostreams replay --help)"
        ),
    ),
    (
        ["stream", "http://127.0.0.1:1/", "--pace", "1"],
        2,
        "aiostreams: error: unrecognized arguments: --pace 1 (see aiostreams --help)",
    ),
    (
        [],
        2,
        "aiostreams: error: the following arguments are required: COMMAND (see aiostreams --help)",
    ),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse's way out
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("argv", "status", "line"), BAD_INPUTS, ids=[" ".join(a) or "(none)" for a, _, _ in BAD_INPUTS]
)
def test_bad_input_prints_one_line(
    argv: list[str], status: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got_status, out, err = _run(argv, capsys)
    assert (got_status, err, out) == (status, line + "\n", "")
    assert SECRET not in err


def test_bench_without_the_bench_extra_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One distribution of the extra missing (as if never installed): one line naming it."""
    if cli._missing_extra("bench") == [] and not metadata.requires("aiostreams"):
        pytest.skip("aiostreams is not installed: no metadata to read the extra from")
    real_version = metadata.version

    def version(name: str) -> str:
        if name == "matplotlib":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(metadata, "version", version)
    status, out, err = _run(["bench"], capsys)
    assert (status, out) == (1, "")
    assert err.startswith("error: aiostreams bench needs the bench extra (missing: ")
    assert "matplotlib" in err and "pip install 'aiostreams[bench]'" in err
    assert len(err.splitlines()) == 1


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **commands.choices}


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_help_documents_every_option(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = _subcommands()[command]
    status, out, _ = _run([command, "--help"] if command else ["--help"], capsys)
    assert status == 0
    undocumented = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            undocumented.append(action.dest)
            continue
        names = action.option_strings or [str(action.metavar or action.dest)]
        if not all(name in out for name in names):
            undocumented.append(action.dest)
    assert not undocumented, f"aiostreams {command} --help lacks {undocumented}"
