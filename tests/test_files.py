"""The write boundary (gsad.files): atomic outputs, refusals, one-line OS errors, output planning."""

import os

import pytest

from gsad.errors import InputError
from gsad.files import OutputPlan, check_folder, same_file, write_output


def _text(text):
    return lambda tmp: open(tmp, "w").write(text)


def test_write_output_refuses_existing_files_and_folders(tmp_path, file_hashes):
    out = tmp_path / "r.json"
    out.write_text("old")
    (tmp_path / "dir").mkdir()
    before = file_hashes(tmp_path)
    with pytest.raises(InputError, match=f"^{out}: output exists \\(use --overwrite to replace it\\)$"):
        write_output(out, _text("new"), overwrite=False)
    with pytest.raises(InputError, match=f"^{tmp_path / 'dir'}: is a folder; name an output file$"):
        write_output(tmp_path / "dir", _text("new"), overwrite=True)
    with pytest.raises(InputError, match="output exists"):  # reached through a folder not made yet
        write_output(tmp_path / "new" / ".." / "r.json", _text("new"), overwrite=False)
    assert file_hashes(tmp_path) == before
    write_output(out, _text("new"), overwrite=True)
    assert out.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["dir", "r.json"]


def test_write_output_makes_folders_and_reports_a_file_in_the_way(tmp_path):
    assert write_output(tmp_path / "a" / "b" / "c.txt", _text("x"), overwrite=False).read_text() == "x"
    (tmp_path / "f").write_text("file")
    with pytest.raises(InputError, match=f"^{tmp_path / 'f' / 'g' / 'c.txt'}: cannot write \\({tmp_path / 'f'} is "
                                         "not a folder\\)$"):
        write_output(tmp_path / "f" / "g" / "c.txt", _text("x"), overwrite=True)
    with pytest.raises(InputError, match=f"^{tmp_path / 'f'}: exists and is not a folder; name an output folder$"):
        check_folder(tmp_path / "f")


def test_failed_write_leaves_nothing_behind(tmp_path):
    def broken(tmp):
        open(tmp, "w").write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match="out.txt: cannot write \\(No space left on device\\)$"):
        write_output(tmp_path / "out.txt", broken, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_same_file_sees_links_and_new_paths(tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    (tmp_path / "sym.png").symlink_to(a)
    os.link(a, tmp_path / "hard.png")
    assert same_file(a, tmp_path / "sym.png") and same_file(a, tmp_path / "hard.png")
    assert same_file(tmp_path / "sub" / ".." / "a.png", a)
    assert not same_file(a, tmp_path / "b.png")
    assert same_file(tmp_path / "New.png", tmp_path / "new.PNG")  # not on disk: compared ignoring case


def test_output_plan_refuses_inputs_and_collisions_with_or_without_case(tmp_path):
    a = tmp_path / "x.png"
    a.write_bytes(b"x")
    plan = OutputPlan([a])
    assert "would replace an input of this run" in plan.problem(tmp_path / "." / "x.png", "x.jpg")
    assert plan.problem(tmp_path / "out" / "X.png", "in/X.jpg") is None
    assert plan.problem(tmp_path / "out" / "x.png", "in/x.tif") == (
        f"{tmp_path / 'out' / 'x.png'}: would be written twice, for in/X.jpg and for in/x.tif; rename one of them "
        "or use separate output folders"
    )
    assert plan.problem(tmp_path / "out" / "y.png") is None


def test_a_symlink_loop_as_output_is_one_line(tmp_path):
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    assert OutputPlan([]).problem(tmp_path / "loop.png") is None
    with pytest.raises(InputError, match="loop.png: output exists"):
        write_output(tmp_path / "loop.png", _text("x"), overwrite=False)
