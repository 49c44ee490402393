"""Linear layers on prepacked oneDNN weights: same results, model left untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from sftmix.eval.engine import packed_linear
from sftmix.eval.engine.packed_linear import packed_linears
from tests.eval.models import one_torch_thread, tiny_model_dir

pytestmark = pytest.mark.skipif(not packed_linear._usable(torch.float32),
                                reason="this PyTorch build has no oneDNN packed linear")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    path = tiny_model_dir(shared_data, tmp_path_factory)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def count_products(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = packed_linear._product

    def counting(x, packed, bias):
        calls[0] += 1
        return real(x, packed, bias)

    monkeypatch.setattr(packed_linear, "_product", counting)
    return calls


def test_the_model_gives_the_same_logits_through_packed_weights(tiny, monkeypatch) -> None:
    ids = torch.tensor([[5, 17, 230, 41, 9, 77, 3], [8, 8, 120, 6, 300, 2, 14]])
    linears = [m for m in tiny.modules() if type(m) is torch.nn.Linear]
    calls = count_products(monkeypatch)
    with torch.inference_mode():
        plain = tiny(input_ids=ids).logits
        with packed_linears(tiny) as used:
            calls[0] = 0  # count this forward pass only
            packed = tiny(input_ids=ids).logits
            assert all("forward" in vars(m) for m in linears)
    assert used
    # Every linear layer went through oneDNN, once for this one forward pass.
    assert calls[0] == len(linears) > 0
    torch.testing.assert_close(packed, plain, rtol=1e-4, atol=1e-4)
    assert not any("forward" in vars(m) for m in linears)
    with torch.inference_mode():
        assert torch.equal(tiny(input_ids=ids).logits, plain)


def test_tied_weights_are_packed_once_and_subclasses_are_left_alone(monkeypatch) -> None:
    class Adapter(torch.nn.Linear):
        pass

    shared = torch.nn.Linear(16, 32, bias=False)
    model = torch.nn.Sequential(torch.nn.Linear(32, 16), shared, Adapter(32, 8))
    model.append(torch.nn.Linear(16, 32, bias=False))
    model[3].weight = shared.weight  # tied, as input embeddings and output heads often are
    packs = []
    real = packed_linear._pack
    monkeypatch.setattr(packed_linear, "_pack", lambda w: packs.append(w) or real(w))
    x = torch.randn(4, 32)
    with torch.inference_mode():
        h = model[0](x)
        expected = (model[1](h), model[3](h))
        with packed_linears(model) as used:
            assert "forward" not in vars(model[2])
            h = model[0](x)
            got = (model[1](h), model[3](h))
    assert used
    # The first layer and the shared weight (not the trial weight that checks the build).
    weights = {id(p) for p in model.parameters()}
    assert [id(w) for w in packs if id(w) in weights] == [id(model[0].weight), id(shared.weight)]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_disabled_or_failing_blocks_leave_the_model_as_it_was(tiny) -> None:
    with packed_linears(tiny, enabled=False) as used:
        assert not used
        assert not any("forward" in vars(m) for m in tiny.modules())
    with pytest.raises(KeyError), packed_linears(tiny) as used:
        assert used
        raise KeyError("inside the block")
    assert not any("forward" in vars(m) for m in tiny.modules())


def test_bfloat16_layers_are_packed_too() -> None:
    if not packed_linear._usable(torch.bfloat16):
        pytest.skip("no bfloat16 packed linear in this build")
    layer = torch.nn.Linear(64, 48).to(torch.bfloat16)
    x = torch.randn(6, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        expected = layer(x)
        with packed_linears(layer) as used:
            got = layer(x)
    assert used and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected.float(), rtol=2e-2, atol=2e-2)
