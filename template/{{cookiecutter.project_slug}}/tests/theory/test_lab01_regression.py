"""Lab 01 (labs/theory/01-regression.md): regression from scratch agrees with scikit-learn.

`labs check 01` runs this file. Each test names the function it checks, so a failure tells you
which of your functions to look at.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.labs import load_settings
from {{ cookiecutter.package_name }}.theory.regression import (
    RegressionSettings,
    fit_linear_closed_form,
    fit_linear_gd,
    fit_logistic_gd,
    logistic_gradient,
    logistic_loss,
    plot_loss_curves,
    split_and_standardise,
)

SETTINGS = RegressionSettings()


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return split_and_standardise(X, y, SETTINGS, stratify=False)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return split_and_standardise(X, y, SETTINGS, stratify=True)


def test_fit_linear_closed_form_matches_scikit_learn(diabetes):
    X_train, _, y_train, _ = diabetes
    w, b = fit_linear_closed_form(X_train, y_train)
    reference = LinearRegression().fit(X_train, y_train)
    np.testing.assert_allclose(w, reference.coef_, rtol=1e-6, atol=1e-6)
    assert b == pytest.approx(reference.intercept_)


def test_fit_linear_gd_reaches_the_closed_form(diabetes):
    X_train, _, y_train, _ = diabetes
    w, b = fit_linear_gd(X_train, y_train, lr=0.2, steps=3000)
    w_exact, b_exact = fit_linear_closed_form(X_train, y_train)
    np.testing.assert_allclose(w, w_exact, atol=1e-2 * np.abs(w_exact).max())
    assert b == pytest.approx(b_exact, rel=1e-4)


def test_logistic_gradient_matches_finite_differences(cancer):
    X_train, _, y_train, _ = cancer
    rng = np.random.default_rng(0)
    w, b, l2 = rng.normal(size=X_train.shape[1]) * 0.1, 0.3, 0.01
    grad_w, grad_b = logistic_gradient(X_train, y_train, w, b, l2)
    eps = 1e-6
    for i in range(X_train.shape[1]):
        step = np.zeros_like(w)
        step[i] = eps
        plus = logistic_loss(X_train, y_train, w + step, b, l2)
        minus = logistic_loss(X_train, y_train, w - step, b, l2)
        numerical = (plus - minus) / (2 * eps)
        assert grad_w[i] == pytest.approx(numerical, abs=1e-6), f"d loss / d w[{i}]"
    plus = logistic_loss(X_train, y_train, w, b + eps, l2)
    minus = logistic_loss(X_train, y_train, w, b - eps, l2)
    assert grad_b == pytest.approx((plus - minus) / (2 * eps), abs=1e-6), "d loss / d b"


def test_fit_logistic_gd_matches_scikit_learn(cancer):
    X_train, X_test, y_train, y_test = cancer
    l2 = 1.0 / len(y_train)  # scikit-learn's C = 1
    w, b = fit_logistic_gd(X_train, y_train, lr=1.0, steps=3000, l2=l2)
    reference = LogisticRegression(C=1.0, tol=1e-8, max_iter=10_000).fit(X_train, y_train)
    np.testing.assert_allclose(w, reference.coef_[0], atol=1e-2 * np.abs(w).max())
    ours = np.mean((X_test @ w + b > 0) == y_test)
    assert ours == pytest.approx(reference.score(X_test, y_test), abs=1 / len(y_test))


def test_gradient_descent_records_a_falling_loss(diabetes, cancer):
    for fit, (X_train, _, y_train, _), extra in [
        (fit_linear_gd, diabetes, {}),
        (fit_logistic_gd, cancer, {"l2": 1.0 / len(cancer[2])}),
    ]:
        history = []
        fit(X_train, y_train, lr=0.1, steps=50, history=history, **extra)
        assert len(history) == 51  # the start, then after every step
        assert (np.diff(history) < 0).all()


def test_config_file_holds_the_defaults():
    config = Path(__file__).resolve().parents[2] / "configs" / "theory" / "regression.yaml"
    assert load_settings(RegressionSettings(), config, []) == RegressionSettings()


def test_command_reports_a_match_and_plots_the_losses(capsys, tmp_path):
    plot = tmp_path / "plots" / "loss.png"  # the folder does not exist yet
    assert main(["theory", "regression", "--set", f"loss_plot={plot}", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["matches"] is True
    assert result["linear"]["methods"]["closed form"]["test_r2"] > 0.3
    assert result["logistic"]["methods"]["gradient descent"]["test_accuracy"] > 0.95
    assert result["loss_plot"] == str(plot)
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in plot.parent.iterdir()] == ["loss.png"]  # no temporary file left


def test_command_says_when_gradient_descent_diverges(capsys, tmp_path):
    plot = tmp_path / "loss.png"
    args = ["linear_lr=0.5", "linear_steps=200", "logistic_steps=20", f"loss_plot={plot}"]
    assert main(["theory", "regression", *[f"--set={a}" for a in args]]) == 0
    out = capsys.readouterr().out
    assert "diverged" in out
    assert out.rstrip().endswith(str(plot)) and plot.stat().st_size > 0  # still plotted


@pytest.mark.parametrize(
    ("setting", "message"), [("linear_steps=many", "linear_steps"), ("loss_plot=a.txt", ".png")]
)
def test_bad_setting_is_a_one_line_error(capsys, setting, message):
    assert main(["theory", "regression", "--set", setting]) == 2
    assert message in capsys.readouterr().err


def test_plot_that_cannot_be_written_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    curve = {"loss": [2.0, 1.0], "minimum": 0.5, "minimum_label": "min", "ylabel": "loss"}
    with pytest.raises(UserError, match="loss_plot"):
        plot_loss_curves({"one model": curve}, tmp_path / "file" / "loss.png")


def test_unwritable_plot_path_is_a_one_line_error(capsys, tmp_path):
    (tmp_path / "taken.png").mkdir()  # a folder where the file should go
    plot = tmp_path / "taken.png"
    assert main(["theory", "regression", "--set", f"loss_plot={plot}"]) == 2
    assert "is a folder" in capsys.readouterr().err
