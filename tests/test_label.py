"""``lmgym label``: driven in a pseudo-terminal as a person would; answers survive quit, closed stdin and restarts."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from lmgym.errors import PreferenceError
from lmgym.label import Question, collect, read_questions
from lmgym.prefs import PreferencePair, load_pairs, write_pairs

PAIRS = [PreferencePair(f"prompt {i}", f"good {i}", f"bad {i}") for i in range(4)]


class Terminal:
    """``lmgym label`` in a pty: keys in, screen out."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "lmgym.cli", "label", *args], stdin=slave, stdout=slave,
                                     stderr=slave, close_fds=True)
        os.close(slave)
        self.screen = ""

    def read_until(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
        return self.screen

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.master)
        return code


def answer_for(screen: str, want_good: bool) -> str:
    """The key that picks the 'good' (or 'bad') completion of the last question on screen."""
    last = screen[screen.rindex("PROMPT:"):]
    a_line = last.split("\n  A: ")[1].split("\n")[0]
    return ("1" if a_line.startswith("good") else "2") if want_good else ("2" if a_line.startswith("good") else "1")


def test_a_person_labels_in_the_terminal_quits_and_resumes(tmp_path):
    candidates, labels = tmp_path / "pairs.jsonl", tmp_path / "labels.jsonl"
    write_pairs(candidates, PAIRS)
    term = Terminal("--pairs", str(candidates), "--output", str(labels), "--name", "ann")
    term.read_until("4 questions, 0 already answered")
    term.type(answer_for(term.read_until("quit > "), want_good=True) + "\n")
    term.read_until("[2/4]")
    term.type("x\n")  # not an answer: asked again
    term.read_until("'x' is not an answer")
    term.type("t\n")
    term.read_until("[3/4]")
    term.type("q\n")
    assert "Saved 2 new answers, 2 in all" in term.read_until("in all")
    assert term.close() == 0
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert [r["choice"] for r in rows] == [rows[0]["choice"], "tie"] and rows[0]["chosen"] == "good 0"
    assert rows[0]["source"] == "person:ann"

    term = Terminal("--pairs", str(candidates), "--output", str(labels))  # resumes at question 3
    term.read_until("4 questions, 2 already answered")
    screen = term.read_until("[3/4]")
    assert "prompt 2" in screen[screen.rindex("[3/4]"):]
    term.type(answer_for(term.read_until("quit > "), want_good=False) + "\n")
    term.read_until("[4/4]")
    term.type("\x04")  # Ctrl-D: stdin closed, the answers so far stay
    assert "3 in all" in term.read_until("in all")
    assert term.close() == 0
    prefs = load_pairs(labels)  # the labels file is preference data: ties dropped and counted
    assert [(p.chosen, p.rejected) for p in prefs.pairs] == [("good 0", "bad 0"), ("bad 2", "good 2")]
    assert prefs.warnings == {"tie or skip (dropped)": 1}


def test_collect_with_a_scripted_annotator_appends_and_skips_answered(tmp_path):
    out = str(tmp_path / "labels.jsonl")
    questions = [Question(i, f"p{i}", f"a{i}", f"b{i}") for i in range(5)]
    assert collect(questions, lambda q: "a" if q.id < 2 else None, out, source="script") == 2
    assert collect(questions, lambda q: "b", out) == 3
    with open(out, "a") as f:
        f.write('{"id": 9, "torn')  # a crash mid-write leaves a torn last line: ignored on resume
    assert collect(questions, lambda q: "b", out) == 0
    with pytest.raises(PreferenceError, match="answered 'maybe'"):
        collect([Question(7, "p", "a", "b")], lambda q: "maybe", out)


def test_bad_candidates_are_typed_errors(tmp_path, capsys):
    with pytest.raises(PreferenceError, match="needs 'prompt'"):
        read_questions([{"prompt": "p", "x": "y"}])
    from lmgym.label import main

    assert main(["--pairs", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "lmgym label: error" in capsys.readouterr().err
