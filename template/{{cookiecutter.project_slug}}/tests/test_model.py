import pytest
import torch

from {{ cookiecutter.package_name }}.config import Config
from {{ cookiecutter.package_name }}.models import GPT, GPTConfig


def make(**kw):
    torch.manual_seed(0)
    return GPT(
        GPTConfig(
            **{"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16, "vocab_size": 20, **kw}
        )
    )


def test_the_config_model_section_is_the_models_own_config():
    assert isinstance(Config().model, GPTConfig)  # one definition, no mirror to keep in step


def test_forward_shapes_and_loss():
    model = make()
    idx = torch.randint(0, 20, (3, 16))
    logits, loss = model(idx, torch.randint(0, 20, (3, 16)))
    assert logits.shape == (3, 16, 20)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(20.0)).item(), rel=0.1)
    logits, loss = model(idx)
    assert logits.shape == (3, 1, 20) and loss is None


def test_weight_tying_and_ignore_index():
    model = make()
    assert model.wte.weight is model.lm_head.weight
    idx = torch.randint(0, 20, (2, 8))
    targets = torch.full_like(idx, -1)
    targets[:, -1] = idx[:, -1]
    _, loss = model(idx, targets)
    assert torch.isfinite(loss)


def test_causal():
    model = make().eval()
    idx = torch.randint(0, 20, (1, 10))
    full, _ = model(idx, idx)
    changed = idx.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 20
    again, _ = model(changed, changed)
    assert torch.allclose(full[0, :-1], again[0, :-1], atol=1e-6)  # the past ignores the future


def test_too_long_sequence():
    with pytest.raises(ValueError, match="block_size"):
        make()(torch.zeros((1, 17), dtype=torch.long))


def test_generate():
    model = make().eval()
    out = model.generate(torch.zeros((2, 1), dtype=torch.long), 20, temperature=0.8, top_k=5)
    assert out.shape == (2, 21)  # longer than block_size: the context is cropped
    greedy = model.generate(torch.zeros((1, 1), dtype=torch.long), 5, temperature=0)
    assert torch.equal(greedy, model.generate(torch.zeros((1, 1), dtype=torch.long), 5, 0))


def test_dropout_and_bias_variant_trains():
    model = make(dropout=0.1, bias=True)
    idx = torch.randint(0, 20, (2, 16))
    _, loss = model(idx, idx)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
