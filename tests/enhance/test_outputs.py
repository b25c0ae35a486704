import numpy as np
from PIL import Image

from gsad.enhance.outputs import plan_outputs


def test_a_folder_yields_every_image_a_file_argument_would(tmp_path):
    """One rule for files and folders (issue 24, case 22): an animated GIF in a folder is an image,
    as it is when named on the command line; the output name still needs a format gsad writes."""
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    (src / "notes.txt").write_text("not an image")
    problems = []
    folder = plan_outputs([str(src)], str(tmp_path / "out"), False, problems.append)
    single = plan_outputs([str(src / "anim.gif")], str(tmp_path / "one.png"), False, problems.append)
    assert problems == []
    assert folder == [(src / "anim.gif", tmp_path / "out" / "anim.png")]
    assert [s for s, _ in single] == [src / "anim.gif"]
    assert plan_outputs([str(src / "anim.gif")], str(tmp_path / "one.gif"), False, problems.append) == []
    assert problems == [f"{tmp_path / 'one.gif'}: unknown output image format '.gif'; name a .png/.jpg file or a "
                        "folder"]
