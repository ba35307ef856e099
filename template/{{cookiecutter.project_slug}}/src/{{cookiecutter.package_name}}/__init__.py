"""{{ cookiecutter.project_name }}: a runnable AI learning roadmap ({{ cookiecutter.track }} track)."""

__version__ = "0.1.0"
