"""The segmenter's commands without a database: the rollup's progress bar (the commands:
tests/integration/segmenter/test_cli.py)."""


def test_a_progress_bar_only_on_a_terminal_and_for_a_big_backlog(monkeypatch):
    from segmenter import commands

    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert type(commands._progress("shop", commands.PROGRESS_FROM)).__name__ == "ProgressBar"
    assert isinstance(commands._progress("shop", commands.PROGRESS_FROM - 1), commands._NoBar)
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert isinstance(commands._progress("shop", 10 * commands.PROGRESS_FROM), commands._NoBar)
