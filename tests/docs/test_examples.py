"""Every ```python block of ``docs/*.md`` and ``README.md`` runs, as the script a reader
would paste into a file, and prints what the page says it prints.

Conventions (for page authors):

* Every fenced block tagged ``python`` (or ``py``) is a complete script: it is run
  alone, in a fresh interpreter (``python -W error``), from an empty directory,
  within ``TIMEOUT`` seconds.  It must exit with status 0 and write nothing to
  stderr (so an "Unclosed client session" or a warning fails it).  No top-level
  ``await``: use ``asyncio.run(main())``.  Code that needs a server starts one
  itself (``aiostreams.server.run_server`` or ``ServerProcess``).
* A block tagged ``text title="Output"`` right after a python block is that
  block's expected stdout, compared exactly (trailing whitespace at the end aside).
* Anything not meant to run (shell commands, output of a shell command) uses
  another tag: ``sh``, ``console``, ``text``.  There is no "skip" marker.
* A python block titled as a pytest module (``python title="test_resume.py"``)
  is written under that name and run with ``python -W error -m pytest``; it
  passes when every test in it passes.
* Any other block titled with a file name (``json title="recordings/rich.jsonl"``)
  is written, at that relative path, into the directory every example of the
  page runs in: a data file the page's examples read.
* The pages listed in ``PAGES_WITH_EXAMPLES`` must have at least one python block;
  every other docs page must be listed in ``PAGES_WITHOUT_EXAMPLES``.

The blocks run concurrently (a small pool of child processes) so the whole file
takes a few seconds; each block is still its own test, named ``page.md:LINE``.
Tracebacks point into the page: the script is written as ``<page>.md.py`` with
the block at its line number in the page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

#: Seconds one example may run (a child-process server starts in well under that).
TIMEOUT = 30.0
#: Examples running at once: each is mostly waiting on loopback I/O and imports.
WORKERS = 3

#: Pages that must show runnable code (README.md joins once it has Python examples).
PAGES_WITH_EXAMPLES = frozenset(
    {
        "index.md",
        "quickstart.md",
        "sdk.md",
        "structs.md",
        "fanin.md",
        "distributed.md",
        "resilience.md",
        "observing.md",
        "design.md",
        "cli.md",
        "testing.md",
        "README.md",
    }
)
#: Pages about commands and figures, not code.
PAGES_WITHOUT_EXAMPLES = frozenset({"performance.md", "api.md"})

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})[ \t]*(?P<lang>[\w+-]*)(?P<attrs>[^\n`]*)\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)(?P=ticks)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_OUTPUT_TITLE = re.compile(r"""title\s*=\s*["']Output["']""")
_TITLE = re.compile(r"""title\s*=\s*["'](?P<title>[^"']+)["']""")
_PYTEST_MODULE = re.compile(r"^test_\w+\.py$")


@dataclass(frozen=True)
class Example:
    page: str  # file name, e.g. "sdk.md"
    line: int  # 1-based line of the first line of code
    code: str
    expected_output: str | None  # the "Output" block that follows, if any
    pytest_module: str | None = None  # run with pytest under this name
    files: tuple[tuple[str, str], ...] = ()  # the page's data files: (relative path, text)

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: timed out
    stdout: str
    stderr: str


def extract_examples(page: str, text: str) -> list[Example]:
    """The python blocks of a markdown text, each with the output block after it.

    Raises:
        ValueError: an ``Output`` block that does not follow a python block.
    """
    blocks = [
        (
            match,
            match["lang"].lower(),
            text.count("\n", 0, match.start("body")) + 1,
            textwrap.dedent(match["body"]),
        )
        for match in _FENCE.finditer(text)
    ]
    examples: list[Example] = []
    files: list[tuple[str, str]] = []
    for match, lang, _, body in blocks:
        title = _TITLE.search(match["attrs"])
        if title and lang not in ("python", "py") and title["title"] != "Output":
            files.append((title["title"], body))
    for index, (match, lang, line, body) in enumerate(blocks):
        is_output = lang == "text" and _OUTPUT_TITLE.search(match["attrs"])
        previous = blocks[index - 1] if index else None
        follows_python = (
            previous is not None
            and previous[1] in ("python", "py")
            and not text[previous[0].end() : match.start()].strip()
        )
        if is_output and not follows_python:
            raise ValueError(f"{page}:{line}: an Output block must follow a python block")
        if lang not in ("python", "py"):
            continue
        nxt = blocks[index + 1] if index + 1 < len(blocks) else None
        expected = None
        if (
            nxt is not None
            and nxt[1] == "text"
            and _OUTPUT_TITLE.search(nxt[0]["attrs"])
            and not text[match.end() : nxt[0].start()].strip()
        ):
            expected = nxt[3]
        title = _TITLE.search(match["attrs"])
        module = title["title"] if title and _PYTEST_MODULE.match(title["title"]) else None
        examples.append(Example(page, line, body, expected, module, tuple(files)))
    return examples


def run_example(example: Example, workdir: Path) -> Outcome:
    """Run one example as a script in a child interpreter."""
    # Blank lines in front put the code at its line in the page: tracebacks say
    # 'File ".../sdk.md.py", line 42', which is line 42 of sdk.md.
    for relative, text in example.files:
        data = workdir / relative
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text(text, encoding="utf-8")
    script = workdir / (example.pytest_module or f"{example.page}.py")
    script.write_text("\n" * (example.line - 1) + example.code, encoding="utf-8")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
    env.pop("PYTHONWARNINGS", None)
    command = [sys.executable, "-W", "error", str(script)]
    if example.pytest_module:
        command[3:] = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    try:
        done = subprocess.run(
            command,
            check=False,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, _text(exc.stdout), _text(exc.stderr))
    return Outcome(done.returncode, done.stdout, done.stderr)


def failure(example: Example, outcome: Outcome) -> str | None:
    """Why ``outcome`` is not a pass for ``example`` (``None``: it passed)."""
    where = f"example at {example.name}"
    if outcome.returncode is None:
        return f"{where} did not finish within {TIMEOUT:g} s\nstderr:\n{outcome.stderr}"
    if outcome.returncode != 0:
        report = f"{where} exited with status {outcome.returncode}\nstderr:\n{outcome.stderr}"
        # pytest reports its failures on stdout
        return report + (f"\nstdout:\n{outcome.stdout}" if example.pytest_module else "")
    if outcome.stderr:
        return f"{where} wrote to stderr (warnings and errors must not happen):\n{outcome.stderr}"
    if example.expected_output is not None and (
        outcome.stdout.rstrip() != example.expected_output.rstrip()
    ):
        return (
            f"{where} printed something else than its Output block\n"
            f"--- the page says:\n{example.expected_output.rstrip()}\n"
            f"--- it printed:\n{outcome.stdout.rstrip()}"
        )
    return None


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _pages() -> list[Path]:
    pages = sorted(DOCS.glob("*.md"))
    if README.is_file():
        pages.append(README)
    return pages


def _all_examples() -> list[Example]:
    return [
        example
        for page in _pages()
        for example in extract_examples(page.name, page.read_text(encoding="utf-8"))
    ]


EXAMPLES = _all_examples()


# -- running every example, a few at a time --------------------------------------------


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Outcome]]]:
    """Start every selected example at once on a small pool; each test waits for its own."""
    selected = {
        item.callspec.params["example"].name
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and hasattr(item, "callspec")
        and "example" in item.callspec.params
    }
    with tempfile.TemporaryDirectory(prefix="aiostreams-docs-") as tmp:
        futures: dict[str, Future[Outcome]] = {}
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for index, example in enumerate(EXAMPLES):
                if example.name not in selected:
                    continue
                workdir = Path(tmp) / str(index)
                workdir.mkdir()
                futures[example.name] = pool.submit(run_example, example, workdir)
            yield futures
            for future in futures.values():
                future.cancel()


@pytest.mark.timeout(TIMEOUT * len(EXAMPLES) / WORKERS + 60)
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs(example: Example, outcomes: dict[str, Future[Outcome]]) -> None:
    outcome = outcomes[example.name].result()
    problem = failure(example, outcome)
    assert problem is None, problem


# -- the pages and the harness itself -----------------------------------------------


def test_every_docs_page_is_classified() -> None:
    names = {page.name for page in DOCS.glob("*.md")}
    unlisted = names - PAGES_WITH_EXAMPLES - PAGES_WITHOUT_EXAMPLES
    assert not unlisted, f"add {sorted(unlisted)} to PAGES_WITH(OUT)_EXAMPLES in {__file__}"
    missing = (PAGES_WITH_EXAMPLES | PAGES_WITHOUT_EXAMPLES) - names - {"README.md"}
    assert not missing, f"pages listed here but not in docs/: {sorted(missing)}"


@pytest.mark.parametrize("page", sorted(PAGES_WITH_EXAMPLES))
def test_page_has_examples(page: str) -> None:
    path = README if page == "README.md" else DOCS / page
    examples = extract_examples(page, path.read_text(encoding="utf-8"))
    assert examples, f"{page} must show at least one runnable ```python example"


def test_every_output_block_is_checked() -> None:
    """An Output block the extractor did not pair with its code would go unchecked."""
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        titled = len(_OUTPUT_TITLE.findall(text))
        paired = sum(e.expected_output is not None for e in extract_examples(page.name, text))
        assert titled == paired, f"{page.name}: {titled} Output blocks, {paired} paired with code"


SAMPLE_PAGE = """\
# A page

```python
print("hello")
```

```text title="Output"
hello
```

!!! note
    ```python
    import sys
    sys.exit(3)
    ```

```sh
echo not run
```
"""


def test_extraction_pairs_output_and_dedents(tmp_path: Path) -> None:
    first, second = extract_examples("sample.md", SAMPLE_PAGE)
    assert (first.line, first.code, first.expected_output) == (4, 'print("hello")\n', "hello\n")
    assert (second.line, second.code, second.expected_output) == (
        13,
        "import sys\nsys.exit(3)\n",
        None,
    )


def test_orphan_output_block_is_refused() -> None:
    with pytest.raises(ValueError, match="must follow a python block"):
        extract_examples("bad.md", '```sh\nls\n```\n\n```text title="Output"\nx\n```\n')


def test_broken_examples_fail(tmp_path: Path) -> None:
    """The harness really fails: a non-zero exit, stderr, and a wrong output."""
    passing, exiting = extract_examples("sample.md", SAMPLE_PAGE)
    assert failure(passing, run_example(passing, tmp_path)) is None

    problem = failure(exiting, run_example(exiting, tmp_path))
    assert problem is not None and "exited with status 3" in problem

    wrong = Example("sample.md", 2, 'print("goodbye")\n', "hello\n")
    problem = failure(wrong, run_example(wrong, tmp_path))
    assert problem is not None and "something else than its Output" in problem

    raising = Example("sample.md", 7, "1 / 0\n", None)
    problem = failure(raising, run_example(raising, tmp_path))
    assert problem is not None and 'sample.md.py", line 7' in problem

    warning = Example("sample.md", 1, "import warnings\nwarnings.warn('careful')\n", None)
    assert failure(warning, run_example(warning, tmp_path)) is not None

    noisy = Example("sample.md", 1, "import sys\nprint('oops', file=sys.stderr)\n", None)
    problem = failure(noisy, run_example(noisy, tmp_path))
    assert problem is not None and "wrote to stderr" in problem


PYTEST_PAGE = """\
```ini title="pytest.ini"
[pytest]
asyncio_default_fixture_loop_scope = function
```

```json title="data/answer.json"
{"answer": 42}
```

```python title="test_answer.py"
import json
from pathlib import Path

def test_answer():
    data = json.loads((Path(__file__).parent / "data" / "answer.json").read_text())
    assert data["answer"] == ANSWER
```
"""


@pytest.mark.parametrize(("answer", "passes"), [(42, True), (41, False)])
def test_pytest_modules_run_with_the_page_files(tmp_path: Path, answer: int, passes: bool) -> None:
    (example,) = extract_examples("sample.md", PYTEST_PAGE.replace("ANSWER", str(answer)))
    assert example.pytest_module == "test_answer.py"
    assert [path for path, _ in example.files] == ["pytest.ini", "data/answer.json"]
    problem = failure(example, run_example(example, tmp_path))
    if passes:
        assert problem is None, problem
    else:
        assert problem is not None and "assert 42 == 41" in problem


# -- the examples type-check -------------------------------------------------------

#: A deliberately wrong script checked with the examples: proves mypy really ran
#: over them (it must report this one, and only this one).
_CANARY = 'import aiostreams\n\ncount: int = aiostreams.SSEDecoder().feed(b"")\n'


#: Types the examples rely on, checked in the same mypy run (assert_type is an error
#: when the inferred type differs).
_TYPES = """\
from typing_extensions import assert_type

import msgspec

from aiostreams import SDK, EventSchema, EventStream, blocking
from aiostreams.models import shared


class A(msgspec.Struct):
    data: str


class B(msgspec.Struct):
    data: int


assert_type(EventSchema(A), EventSchema[A])
assert_type(EventSchema(A, B, sentinel="[DONE]"), EventSchema[A | B])


async def chat(s: SDK) -> None:
    Event = shared.ChatCompletionEvent | shared.SentinelEvent
    assert_type(await s.eventstreams.chat(request={"prompt": "x"}), EventStream[Event])
    assert_type(
        await s.eventstreams.chat(request={"prompt": "x", "stream": True}), EventStream[Event]
    )
    assert_type(
        await s.eventstreams.chat(request={"prompt": "x", "stream": False}),
        list[shared.ChatCompletionEvent],
    )
    assert_type(
        await s.eventstreams.chat(request=shared.ChatRequest(prompt="x")),
        EventStream[Event] | list[shared.ChatCompletionEvent],
    )
    assert_type(await s.eventstreams.text(), EventStream[shared.TextEvent])


def blocking_chat(s: blocking.SDK) -> None:
    Event = shared.ChatCompletionEvent | shared.SentinelEvent
    assert_type(s.eventstreams.chat(request={"prompt": "x"}), blocking.EventStream[Event])
    assert_type(
        s.eventstreams.chat(request={"prompt": "x", "stream": False}),
        list[shared.ChatCompletionEvent],
    )
"""


def test_examples_pass_mypy_strict(tmp_path: Path) -> None:
    """Every python block, as written, is clean under ``mypy --strict``: the API's
    types hold for the code the docs show (e.g. ``async with res`` after
    ``res = await s.eventstreams.chat(request={...})``)."""
    pytest.importorskip("mypy", reason="mypy is in the test and lint extras")
    names: dict[str, str] = {}
    for example in EXAMPLES:
        name = re.sub(r"\W", "_", example.page) + f"_line{example.line}.py"
        names[name] = example.page
        # Blank lines in front keep mypy's line numbers those of the page.
        (tmp_path / name).write_text("\n" * (example.line - 1) + example.code, encoding="utf-8")
    (tmp_path / "canary.py").write_text(_CANARY, encoding="utf-8")
    (tmp_path / "api_types.py").write_text(_TYPES, encoding="utf-8")
    names["api_types.py"] = "api_types.py"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "docs-examples"),
            *sorted(names),
            "canary.py",
        ],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    canary = [line for line in errors if line.startswith("canary.py:3:")]
    assert canary, f"mypy did not check the examples:\n{done.stdout}{done.stderr}"
    problems = [
        f"{names[line.split(':', 1)[0]]}:{line.split(':', 1)[1]}"
        for line in errors
        if not line.startswith("canary.py:")
    ]
    assert not problems, "examples that fail mypy --strict (page:line):\n" + "\n".join(problems)
