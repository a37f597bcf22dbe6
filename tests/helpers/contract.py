"""Checks every adapter must pass, written once and called from each family's tests.

Ground truth is always a plain torch hook on the same module and call (see
:mod:`tests.helpers.hooks`); models are tiny pipelines built from constructor args.
"""

from contextlib import contextmanager

import torch

from interp.adapter import GenerationRequest, ModelAdapter
from interp.edits import Add, Apply, Edit, Read, Scale, Zero
from interp.runner import run
from tests.helpers.hooks import edited_input, recorded


def module(adapter: ModelAdapter, attention: str, layer: int) -> torch.nn.Module:
    """The torch module behind ``(attention, layer)``."""
    return adapter.denoiser.get_submodule(adapter.catalog.module(attention, layer).path)


def rows(request: GenerationRequest) -> int:
    """Rows the denoiser sees per call."""
    return request.batch_size * (2 if request.guided else 1)


def per_head(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[batch, seq, heads * d_head]`` viewed as ``[batch, seq, head, d_head]``."""
    return x.view(*x.shape[:-1], heads, -1)


def check_head_geometry(adapter: ModelAdapter) -> None:
    """Head sites = sum of heads over modules, and the geometry matches the modules."""
    catalog = adapter.catalog
    assert len(catalog.sites(["head"])) == sum(m.n_heads for m in catalog.modules)
    for m in catalog.modules:
        mod = adapter.denoiser.get_submodule(m.path)
        proj = adapter.denoiser.get_submodule(m.out_proj)
        assert m.n_heads == mod.heads
        assert proj.in_features == m.n_heads * m.d_head
        assert proj.out_features == m.d_model
    for kind in ("self", "cross"):
        layers = [m.layer for m in catalog.modules if m.attention == kind]
        assert layers == list(range(len(layers)))


@contextmanager
def call_log(adapter: ModelAdapter):
    """Record, per attention-module call: path, positional-arg count and keyword args."""
    calls: list[tuple[str, int, dict]] = []
    handles = []
    for m in adapter.catalog.modules:
        mod = adapter.denoiser.get_submodule(m.path)

        def hook(module, args, kwargs, path=m.path):
            calls.append((path, len(args), dict(kwargs)))

        handles.append(mod.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def check_execution_order_and_text_kwarg(adapter: ModelAdapter, request: GenerationRequest) -> None:
    """Catalog order = order of calls; cross modules get their text as a keyword tensor."""
    with call_log(adapter) as calls:
        adapter.generate(request)
    per_step = len(adapter.catalog.modules)
    assert len(calls) == per_step * request.num_steps
    expected = [m.path for m in adapter.catalog.modules]
    for step in range(request.num_steps):
        assert [c[0] for c in calls[step * per_step : (step + 1) * per_step]] == expected
    kinds = {m.path: m for m in adapter.catalog.modules}
    for path, n_args, kwargs in calls:
        m = kinds[path]
        if m.attention == "cross":
            text = kwargs[m.text_argument]
            assert isinstance(text, torch.Tensor) and text.shape[0] == rows(request)
            assert text.shape[-1] == m.d_context
            assert n_args <= 1  # only hidden_states may be positional
        else:
            assert kwargs.get("encoder_hidden_states") is None


def check_reads_equal_hooks(
    adapter: ModelAdapter, request: GenerationRequest, attention: str, layer: int, head: int
) -> None:
    """Every component's reads equal a plain hook on the same module and call."""
    m = adapter.catalog.module(attention, layer)
    mod = module(adapter, attention, layer)
    proj = adapter.denoiser.get_submodule(m.out_proj)
    b = request.batch_size
    with recorded(proj, "input") as heads, recorded(mod, "output") as out:
        if attention == "cross":
            with recorded(mod, "text") as text:
                plain = adapter.generate(request)
        else:
            plain = adapter.generate(request)
    name = f"{attention}.{layer}"
    reads = [
        Read(f"{name}.heads"),
        Read(f"{name}.head.{head}", steps="1:3", branch="cond"),
        Read(f"{name}.out", branch="uncond", samples=(1,)),
    ]
    if attention == "cross":
        reads.append(Read(f"{name}.text", steps=[0, 2]))
    result = run(adapter, request, reads=reads)
    assert torch.equal(result.output.audio, plain.audio)
    assert len(heads) == request.num_steps == result.reads[f"{name}.heads"].shape[0]
    for step in range(request.num_steps):
        assert torch.equal(result.reads[f"{name}.heads"][step], per_head(heads[step], m.n_heads))
        assert torch.equal(result.reads[f"{name}.out"][step], out[step][[1]])
    for i, step in enumerate((1, 2)):
        expected = per_head(heads[step], m.n_heads)[b:, :, head]
        assert torch.equal(result.reads[f"{name}.head.{head}"][i], expected)
    if attention == "cross":
        for i, step in enumerate((0, 2)):
            assert torch.equal(result.reads[f"{name}.text"][i], text[step])


def check_identity_edits(adapter: ModelAdapter, request: GenerationRequest, sites: list[str]) -> None:
    """Identity edits (``Apply`` returning its input, ``Scale(1.0)``) change no bit."""
    plain = adapter.generate(request)
    identity = [Apply(lambda x, step: x), Scale(1.0)]
    edits = [Edit(site, identity[i % 2]) for i, site in enumerate(sites)]
    edits += [Edit(site, identity[(i + 1) % 2], steps=[1]) for i, site in enumerate(sites)]
    edited = run(adapter, request, edits=edits)
    assert torch.equal(edited.output.audio, plain.audio)
    assert torch.equal(edited.output.latents, plain.latents)


def check_head_write(
    adapter: ModelAdapter, request: GenerationRequest, attention: str, layer: int, head: int
) -> None:
    """Zeroing one head on the cond branch at one step changes only that slice."""
    m = adapter.catalog.module(attention, layer)
    proj = adapter.denoiser.get_submodule(m.out_proj)
    with recorded(proj, "input") as before:
        adapter.generate(request)
    name = f"{attention}.{layer}"
    result = run(
        adapter,
        request,
        edits=[Edit(f"{name}.head.{head}", Zero(), steps=1, branch="cond")],
        reads=[Read(f"{name}.heads", steps=[0, 1])],
    )
    after = result.reads[f"{name}.heads"]
    assert torch.equal(after[0], per_head(before[0], m.n_heads))  # an earlier step: untouched
    reference = per_head(before[1], m.n_heads)
    b = request.batch_size
    assert after[1][b:, :, head].abs().max() == 0
    changed = (after[1] != reference).any(dim=(1, 3))  # [row, head]
    assert changed.nonzero().tolist() == [[r, head] for r in range(b, 2 * b)]


def check_step_and_branch_selection(
    adapter: ModelAdapter, request: GenerationRequest, attention: str, layer: int
) -> None:
    """An edit runs on exactly the chosen steps and rows, and nowhere else."""
    m = adapter.catalog.module(attention, layer)
    proj = adapter.denoiser.get_submodule(m.out_proj)
    seen: list[tuple[int, int]] = []

    def spy(x: torch.Tensor, step: int) -> torch.Tensor:
        seen.append((step, x.shape[0]))
        return torch.zeros_like(x)

    name = f"{attention}.{layer}"
    with recorded(proj, "output") as plain:
        adapter.generate(request)
    with recorded(proj, "output") as out:
        run(adapter, request, edits=[Edit(f"{name}.heads", Apply(spy), steps=[1], branch="uncond")])
    b = request.batch_size
    assert seen == [(1, b)]
    assert torch.equal(out[0], plain[0])  # before the edited step
    bias = proj.bias if proj.bias is not None else torch.zeros(proj.out_features)
    assert torch.equal(out[1][:b], bias.expand_as(out[1][:b]))  # uncond rows: zero input
    assert torch.equal(out[1][b:], plain[1][b:])  # cond rows of the same call untouched


def check_write_equals_plain_hook(
    adapter: ModelAdapter, request: GenerationRequest, attention: str, layer: int, head: int
) -> None:
    """Adding a vector to one head equals the same edit made by a plain torch hook."""
    m = adapter.catalog.module(attention, layer)
    proj = adapter.denoiser.get_submodule(m.out_proj)
    vector = torch.randn(m.d_head, generator=torch.Generator().manual_seed(3))
    b = request.batch_size

    def plain_edit(x: torch.Tensor, call: int) -> torch.Tensor:
        if call in (0, 2):
            per_head(x, m.n_heads)[b:, :, head] += vector
        return x

    with edited_input(proj, plain_edit):
        expected = adapter.generate(request)
    got = run(
        adapter,
        request,
        edits=[Edit(f"{attention}.{layer}.head.{head}", Add(vector), steps=[0, 2], branch="cond")],
    )
    assert torch.equal(expected.audio, got.output.audio)
    assert not torch.equal(adapter.generate(request).audio, got.output.audio)
