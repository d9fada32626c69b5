from __future__ import annotations

import time
from pathlib import Path

from uet_doit.tools.process import run_process

from support import wait_gone


def test_output_goes_to_files_and_stdin_is_closed(tmp_path: Path) -> None:
    out, err = tmp_path / "o", tmp_path / "e"
    res = run_process(
        ["sh", "-c", "cat; echo done; echo warn >&2"],
        cwd=tmp_path,
        stdout_path=out,
        stderr_path=err,
        timeout=60,
    )
    assert res.exit_code == 0 and res.stdout == "done\n" and res.stderr == "warn\n"
    assert out.read_text() == "done\n"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    start = time.monotonic()
    res = run_process(
        ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"],
        cwd=tmp_path,
        timeout=0.5,
        grace_seconds=0.5,
    )
    assert res.timed_out and res.exit_code is None
    assert time.monotonic() - start < 30  # not the 60 s of the sleep
    grandchild = int(pidfile.read_text())
    assert wait_gone(grandchild), "the grandchild outlived the timeout"


def test_exit_file_records_the_tools_exit_code(tmp_path: Path) -> None:
    exit_file = tmp_path / "tool.exit"
    res = run_process(["sh", "-c", "exit 7"], cwd=tmp_path, exit_file=exit_file)
    assert res.exit_code == 7
    assert exit_file.read_text().strip() == "7"


def test_exit_files_and_pid_notes_of_several_tools_stay_their_own(tmp_path: Path) -> None:
    """Exit files share one file per code (hard links): rewriting one after a retry must
    not change another's, and each pid note names its own tool."""
    from uet_doit.run.executors.adopted import noted_pid
    from uet_doit.tools.process import ToolProcesses

    tools = ToolProcesses()
    try:
        files = [tmp_path / f"s{i}.1.exit" for i in range(3)]
        codes = [0, 0, 3]
        pids: list[int] = []
        for code, exit_file in zip(codes, files, strict=True):
            res = run_process(
                ["sh", "-c", f"exit {code}"],
                cwd=tmp_path,
                exit_file=exit_file,
                on_start=pids.append,
                processes=tools,
            )
            assert res.exit_code == code
        again = run_process(["sh", "-c", "exit 5"], cwd=tmp_path, exit_file=files[0])
        assert again.exit_code == 5
    finally:
        tools.close()
    assert [f.read_text() for f in files] == ["5\n", "0\n", "3\n"]
    assert [noted_pid(f) for f in files[1:]] == pids[1:]


def test_instruction_text_reaches_argv_verbatim(tmp_path: Path) -> None:
    text = 'it\'s "quoted" $(rm -rf /) `id` \n newline; ünïcødé'
    res = run_process(
        ["python3", "-c", "import sys; print(sys.argv[1], end='')", text],
        cwd=tmp_path,
        exit_file=tmp_path / "x.exit",
    )
    assert res.stdout == text
