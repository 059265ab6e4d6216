"""What a student sees when their code fails, and files the grader must never touch.

Each test pins a problem found by trying the kit as a newcomer.
"""

from pathlib import Path

from grader import runner
from grader.cli import main
from grader.report import render_text
from grader.sources import SubmissionFile, open_submission

KIT = Path(__file__).resolve().parent.parent
NAME_ERROR = '''\
def token_ids_to_text(token_ids, tokenizer):
    flat = token_ids.squeeze(0)
    return tokenizer.decode(flat.tolist(), foo)
'''


def grade_text(path, exercise, ctx, verbose=False):
    report = runner.grade(SubmissionFile(path), [exercise], ctx=ctx)
    return report, render_text(report, verbose=verbose)


def test_an_error_names_the_students_line_and_v_shows_the_traceback(tmp_path, grading_ctx):
    path = tmp_path / "work.py"
    path.write_text(NAME_ERROR)
    _, text = grade_text(path, "token_ids_to_text", grading_ctx)
    assert "raised NameError: name 'foo' is not defined (at line 3: return tokenizer.decode(flat.tolist(), foo))" in text
    assert "Traceback" not in text
    _, verbose = grade_text(path, "token_ids_to_text", grading_ctx, verbose=True)
    assert f'File "{path}", line 3, in token_ids_to_text' in verbose


def test_a_different_error_of_the_same_type_is_not_given_a_known_mistakes_cause(tmp_path, grading_ctx):
    # squeeze() on a one-token tensor raises a TypeError too, with another message
    path = tmp_path / "work.py"
    path.write_text("def token_ids_to_text(token_ids, tokenizer):\n    return tokenizer.decode(token_ids)\n")
    report, text = grade_text(path, "token_ids_to_text", grading_ctx)
    assert report.score == 0 and "likely cause" not in text


def test_a_file_with_a_byte_order_mark_is_graded(tmp_path, grading_ctx):
    solution = (KIT / "solutions" / "text_to_token_ids.py").read_text(encoding="utf-8")
    path = tmp_path / "bom.py"
    path.write_bytes(b"\xef\xbb\xbf" + solution.encode("utf-8"))  # as Windows editors save it
    report = runner.grade(open_submission(path), ["text_to_token_ids"], ctx=grading_ctx)
    assert report.score == report.max_score == 6


def test_output_never_replaces_code_or_kit_files(tmp_path, capsys):
    code = tmp_path / "calc_loss_batch.py"
    code.write_text("# my finished exercise\n")
    assert main(["text_to_token_ids", "--output", str(code)]) == 2
    assert code.read_text() == "# my finished exercise\n"
    assert main(["text_to_token_ids", "--output", str(KIT / "exercises" / "report.txt")]) == 2
    assert not (KIT / "exercises" / "report.txt").exists()
    assert "--output" in capsys.readouterr().err


def test_data_line_endings_are_never_converted_by_git():
    attributes = (KIT / ".gitattributes").read_text().split("\n")
    assert "data/** -text" in attributes
