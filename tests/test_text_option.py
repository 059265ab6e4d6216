"""``python -m reference --text PATH``: the chapter's run on another text file.

In-process (``reference.run.main``), the small model with a context of 64 tokens,
one CPU thread. Nothing here uses the network.
"""

from __future__ import annotations

from reference import run as ref_run
from reference.checkpoints import read_checkpoint
from reference.data import load_text

SMALL_RUN = ("--model", "small", "--context-length", "64", "--device", "cpu")


def _main(capsys, *args):
    rc = ref_run.main([*map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("python -m reference: error: ") and "Traceback" not in text
    return lines[0]


def test_text_run_records_its_file_and_resume_checks_it(tmp_path, capsys, one_thread):
    text = tmp_path / "story.txt"
    text.write_text(load_text()[:4000], encoding="utf-8")  # 7 steps of 2 x 64 tokens
    out = tmp_path / "out"
    rc, stdout, err = _main(capsys, *SMALL_RUN, "--epochs", 1, "--text", text, "--out", out)
    assert rc == 0, err
    assert "Pretraining the small model on story.txt on cpu (1 epoch, 7 steps)" in err
    assert stdout.startswith("Ep 1 (Step 000000): ")
    settings = read_checkpoint(out / "model_and_optimizer.pth")["settings"]
    assert settings["text"] == str(text.resolve()) and len(settings["text_sha256"]) == 64

    other = tmp_path / "other.txt"
    other.write_text(load_text()[:4000], encoding="utf-8")
    rc, stdout, err = _main(capsys, "--resume", out, "--epochs", 2, "--text", other)
    assert rc == 2 and stdout == ""
    assert f"continues with the run's own --text ({text.resolve()}): leave out --text" in _one_line(err)

    text.write_text(load_text()[:3000], encoding="utf-8")  # changed after the run started
    rc, stdout, err = _main(capsys, "--resume", out, "--epochs", 2)
    assert rc == 2 and stdout == ""
    assert "changed since the run started" in _one_line(err)


def test_text_errors_are_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    rc, stdout, err = _main(capsys, *SMALL_RUN, "--text", missing, "--out", tmp_path / "out")
    assert rc == 2 and stdout == ""
    assert f"--text {missing}" in _one_line(err)

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Caf\xe9 au lait. ".encode("latin-1") * 500)
    rc, stdout, err = _main(capsys, *SMALL_RUN, "--text", latin1, "--out", tmp_path / "out")
    assert rc == 2 and "is not UTF-8 text (byte 3): save it as UTF-8" in _one_line(err)

    short = tmp_path / "short.txt"
    short.write_text("Every effort moves you. " * 20, encoding="utf-8")  # 100 tokens: too few for 256
    rc, stdout, err = _main(capsys, "--model", "small", "--text", short, "--out", tmp_path / "out")
    assert rc == 2
    assert "--context-length 256 is too long for the training text (432 characters): use a smaller value (at most" \
        in _one_line(err)
    assert not (tmp_path / "out").exists()  # nothing written for a run that cannot start
