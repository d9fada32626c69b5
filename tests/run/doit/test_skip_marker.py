"""`skip: done` on a step (a converted plan's finished item): not run, shown as skipped with
its reason, and its dependents run as if it had succeeded."""

from __future__ import annotations

from support import Project, shell_step


def _bundle(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "s",
            "workstreams": [
                {
                    "ws_id": "first",
                    "steps": [shell_step("a", "echo a > a.txt", skip="done")],
                },
                {
                    "ws_id": "second",
                    "depends_on": ["first"],
                    "steps": [
                        shell_step("b", "echo b > b.txt", depends_on=["a"]),
                        shell_step("c", "echo c > c.txt", depends_on=["b"], skip="cancelled"),
                        shell_step("d", "echo d > d.txt", depends_on=["c"]),
                    ],
                },
            ],
        }
    )


def test_done_steps_are_not_run_and_their_dependents_are(project: Project) -> None:
    _bundle(project)
    result = project.uet("run", "bundle.yaml")
    assert result.code == 0, result.out + result.err
    assert not (project.root / "a.txt").exists()
    assert not (project.root / "c.txt").exists()
    assert project.read("b.txt") == "b\n"
    assert project.read("d.txt") == "d\n"
    assert "a (done)" in result.out and "c (cancelled)" in result.out
    text = project.uet("status").out
    assert "skip: done" in text and "skip: cancelled" in text
    states = {s["step_id"]: s["status"] for s in project.status()["steps"]}
    assert states == {"a": "skipped", "b": "succeeded", "c": "skipped", "d": "succeeded"}


def test_dry_run_shows_the_reason(project: Project) -> None:
    _bundle(project)
    result = project.uet("run", "bundle.yaml", "--dry-run")
    assert result.code == 0, result.out + result.err
    assert "skipped: done" in result.out
    assert not (project.root / "b.txt").exists()


def test_naming_a_done_step_says_why_it_will_not_run(project: Project) -> None:
    _bundle(project)
    result = project.uet("run", "bundle.yaml", "a")
    assert result.code == 3
    assert "'a' (skip: done)" in result.err and "remove the step's `skip`" in result.err
