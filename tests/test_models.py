import torch

from grok_tui.config import PRESETS
from grok_tui.models import ConcatMLP, OneLayerTransformer, ParityMLP, SumMLP, build_model, scale_init


def test_model_shapes_and_neuron_inputs():
    x = torch.tensor([[1, 2], [3, 4], [0, 6]])
    # The transformer has the paper's p + 1 outputs: "=" has a logit too, though it is never an answer.
    for model, outputs in (
        (SumMLP(7, 16), 7),
        (ConcatMLP(7, 8, 16), 7),
        (OneLayerTransformer(7, d_model=16, n_heads=4, d_mlp=32), 8),
    ):
        assert model(x).shape == (3, outputs)
        assert model.neuron_inputs().shape[0] == 7
        assert all(m.dim() == 2 for m in model.matrices().values())
    parity = ParityMLP(10, 16)
    assert parity(torch.randn(5, 10)).shape == (5, 2)
    assert parity.neuron_inputs() is None


def test_concat_neuron_inputs_are_first_operand_through_hidden_layer():
    torch.manual_seed(0)
    model = ConcatMLP(5, 3, 4)
    a = torch.tensor([[2, 0]])
    b = torch.tensor([[2, 1]])
    # Changing only the second operand leaves the first-operand contribution alone:
    # the pre-activation difference equals the second operand's part only.
    w = model.neuron_inputs()

    def pre(x):
        return model.hidden(torch.cat([model.embed_a(x[:, 0]), model.embed_b(x[:, 1])], 1))

    first_part = pre(a) - model.embed_b.weight[0] @ model.hidden.weight[:, 3:].T - model.hidden.bias
    assert torch.allclose(first_part[0], w[2], atol=1e-6)
    # (atol: a difference of two float32 sums near zero is only good to ~1e-7; the default 1e-8 flaked.)
    assert torch.allclose(
        pre(b) - pre(a), (model.embed_b.weight[1] - model.embed_b.weight[0]) @ model.hidden.weight[:, 3:].T, atol=1e-6
    )


def test_init_scale_multiplies_every_parameter():
    torch.manual_seed(0)
    base = build_model(PRESETS["mod-add"].config(), 67)
    torch.manual_seed(0)
    big = build_model(PRESETS["mod-add"].config(init_scale=4.0), 67)
    for p, q in zip(base.parameters(), big.parameters(), strict=True):
        assert torch.allclose(q, 4.0 * p)
    model = SumMLP(5, 4)
    before = model.embed.weight.clone()
    scale_init(model, 0.5)
    assert torch.allclose(model.embed.weight, before * 0.5)


def test_the_transformer_starts_as_the_papers_code_draws_it():
    torch.manual_seed(0)
    model = build_model(PRESETS["transformer-add"].config(), 113)
    d_model = 128
    for name in ("embed.weight", "pos", "qkv.weight", "attn_out.weight", "mlp_in.weight", "mlp_out.weight"):
        weight = dict(model.named_parameters())[name]
        assert abs(weight.std().item() * d_model**0.5 - 1) < 0.1, name
    assert abs(model.unembed.weight.std().item() * 114**0.5 - 1) < 0.05
    assert not model.mlp_in.bias.any() and not model.mlp_out.bias.any()
    # The paper's starting norm is ~42; PyTorch's defaults gave ~123 (its N(0, 1) embedding).
    norm = torch.sqrt(sum(p.square().sum() for p in model.parameters())).item()
    assert 35 < norm < 50
