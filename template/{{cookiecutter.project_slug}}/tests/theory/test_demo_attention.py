"""The demo's Attention tab (theory/demo_tab.py): its handler called directly, then served.

Skipped in a project rendered without the demo (it has no demo_tab.py and no Gradio).
"""

import os

import pytest

from ..conftest import PACKAGE

demo_tab = pytest.importorskip(f"{PACKAGE}.theory.demo_tab", reason="this project has no demo")
gr = pytest.importorskip("gradio")
demo = pytest.importorskip(f"{PACKAGE}.demo")

AttentionHandler = demo_tab.AttentionHandler


@pytest.fixture(scope="module")
def runs_dir(addition_run):
    """The runs folder of the tiny addition model (tests/theory/conftest.py)."""
    return addition_run.parent


def test_the_demo_finds_the_tab_by_looking(tmp_path):
    assert demo.track_tabs() == [demo_tab]
    app = demo.build_app(None, tmp_path)
    names = {fn.api_name for fn in app.fns.values() if fn.api_visibility == "public"}
    assert names == {"generate", "environment", *demo_tab.API_NAMES}


def test_show_draws_the_newest_model(runs_dir):
    picture, text = AttentionHandler(runs_dir).show("12+34=")
    assert picture.format == "PNG" and picture.width > 300
    assert "Model: " in text and "checkpoints/" in text
    assert "The last character '=' looks most at:" in text and "layer 2  head 2" in text


def test_show_without_a_model_names_the_train_command(tmp_path):
    picture, text = AttentionHandler(tmp_path / "runs").show("12+34=")
    assert picture is None
    assert demo_tab.TRAIN_COMMAND in text and "No trained model yet" in text


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "The prompt is empty"),
        ("12*34=", "The prompt has characters this model never saw: '*'"),
        (5, "The prompt must be text"),
        ("1" * 201, "The prompt is too long (201 characters; at most 200)"),
    ],
)
def test_show_refuses_bad_input_with_a_message(runs_dir, prompt, message):
    with pytest.raises(gr.Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        AttentionHandler(runs_dir).show(prompt)


def test_show_with_only_a_broken_checkpoint_is_a_message(tmp_path):
    folder = tmp_path / "runs" / "broken" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "step_0000001.pt").write_bytes(os.urandom(2000))
    with pytest.raises(gr.Error, match="Could not load the trained model"):
        AttentionHandler(tmp_path / "runs").show("12+34=")


def test_the_served_app_answers_the_attention_api(runs_dir):
    """The real app on a loopback port, called the way any client would."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from PIL import Image

    app = demo.build_app(None, runs_dir)
    app.launch(
        server_name="127.0.0.1", server_port=demo.free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        client = Client(app.local_url, verbose=False)
        image, text = client.predict("12+34=", api_name="/attention")
        with Image.open(image) as picture:
            assert picture.format == "PNG" and picture.width > 300
        assert "looks most at" in text
        with pytest.raises(AppError, match="never saw"):
            client.predict("12*34=", api_name="/attention")
    finally:
        app.close()
