"""notebooks/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient), as a
learner runs it on a laptop; Colab runs the same cells after cloning the project."""

import shutil

import pytest

from .conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_the_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # A copy of the project, so the run folder and the index land in tmp_path.
    project = tmp_path / "project"
    skip = shutil.ignore_patterns(".venv", "runs", ".rag-index", ".pytest_cache", "__pycache__")
    shutil.copytree(PROJECT_ROOT, project, ignore=skip)
    notebook = nbformat.read(project / "notebooks/quickstart.ipynb", as_version=4)
    monkeypatch.setenv("QUICKSTART_STEPS", "20")
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(project / "notebooks")}},
    )
    client.execute()

    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/markdown", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "device" in text and "torch" in text  # the doctor report
    assert "# Run report" in text  # the report, displayed
    runs = list((project / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "report.md").is_file()
    kinds = [out.get("output_type") for cell in notebook.cells for out in cell.get("outputs", [])]
    assert "error" not in kinds
