"""The ``which-word`` method for experiment files: which prompt words located heads read.

Per concept, for each head (from a ``locate`` step, or a ``heads:`` list) and each pair:
the token-patching effect of every word of the clean prompt (its positions of the head's
keys and values patched from the clean run into the corrupted run), the concept word(s)
(where the two prompts differ) marked, and the share of the head's attention on every
word of the clean prompt. Example::

    - name: which
      method: which-word
      heads: {from: locate, key: subsets}
      pairs: {source: synthmusic, concepts: [tempo, drums], per_concept: 4}

The library is :mod:`interp.word_reading` and :mod:`interp.attention_patterns`.
"""

from typing import Any, Literal

from pydantic import Field

from interp.errors import TadaError
from interp.experiments.context import StepContext
from interp.experiments.fields import Refable, SiteStr
from interp.experiments.methods import MethodSpec, register_method
from interp.experiments.units import Row, Unit
from interp.sites import Site
from interp.spec_steps.common import PatchingSettings, build_metric, by_concept, step_pairs


@register_method
class WhichWord(PatchingSettings, MethodSpec):
    """Token-level patching and attention per word for located heads, per concept."""

    summary_line = "which prompt words located heads read (token patching, attention per word)"
    exports = ("roles", "attention")

    method: Literal["which-word"] = Field(description="Which prompt words each head reads.")
    heads: Refable(list[SiteStr] | dict[str, list[SiteStr]]) = Field(  # pyright: ignore[reportInvalidTypeForm]
        description="Cross-attention heads ('cross.<layer>.head.<h>'), one list for every "
        "concept or one per concept (e.g. {from: locate, key: subsets})."
    )
    words: list[str] | None = Field(
        default=None,
        description="Words to patch (default: every word of each clean prompt); a word "
        "missing from a prompt is an error.",
    )

    def check(self, ctx: Any) -> None:
        heads = self.heads
        if isinstance(heads, (list, dict)):
            names = heads if isinstance(heads, list) else [h for hs in heads.values() for h in hs]
            bad = [h for h in names if isinstance(h, str) and not _is_cross_head(h)]
            if bad:
                ctx.error("heads", "which-word reads cross-attention heads such as 'cross.2.head.1'", bad)
        if self.pairs is None and ctx.prompts == []:
            ctx.error("pairs", "this step needs (clean, corrupted) pairs: give `pairs: {source: synthmusic}`")

    def plan(self, ctx: StepContext) -> list[Unit]:
        concepts = by_concept(step_pairs(self, ctx))
        return [Unit(f"c-{c}", {"concept": c}) for c in concepts if self._heads(c)]

    def _heads(self, concept: str) -> list[str]:
        heads = self.heads
        if isinstance(heads, dict):
            return list(heads.get(concept, []))
        return list(heads) if isinstance(heads, list) else []  # a reference unresolved (planning)

    def cost_note(self) -> str:
        if not isinstance(self.heads, (list, dict)):
            return "not counted: the heads come from an earlier step's result, known when it has run"
        return "the words are counted from the prompts' tokens: the model is loaded with its tokenizer"

    def unit_cost(self, unit: Unit, ctx: StepContext) -> Any:
        """Per pair: the token patching sweep over the words of its clean prompt (counted
        with the model's tokenizer), and the generation that reads the patterns."""
        from interp.cost import Cost
        from interp.word_reading import token_patching_cost

        concept = unit.params["concept"]
        pairs = by_concept(step_pairs(self, ctx))[concept]
        structure, seeds = ctx.structure, list(ctx.generation.seeds)
        if getattr(structure, "pipeline", None) is None:  # a structure-only build cannot tokenize
            structure = ctx.adapter
        heads = structure.catalog.parse_many(self._heads(concept))
        metric = build_metric(self.metric, structure, self.scorer_model)
        base = ctx.request(["-"], [0])
        cost = Cost()
        for pair in pairs:
            cost = cost + token_patching_cost(
                structure, base, pair, len(seeds), heads, metric, words=self.words, steps=self.patch_steps,
                batch_size=self.batch_size,
            ).labelled("words")  # fmt: skip
            cost = cost + Cost.of(ctx.request([pair.clean], [seeds[0]]), label="patterns")
        return cost.merged()

    def run_unit(self, unit: Unit, ctx: StepContext) -> list[Row]:
        from interp.attention_patterns import read_patterns
        from interp.word_reading import OTHER, attention_by_word, context_of, token_patching

        concept = unit.params["concept"]
        pairs = by_concept(step_pairs(self, ctx))[concept]
        heads = ctx.adapter.catalog.parse_many(self._heads(concept))
        adapter, seeds = ctx.adapter, list(ctx.generation.seeds)
        metric = build_metric(self.metric, adapter, self.scorer_model)
        base = ctx.request(["-"], [0])
        rows: list[Row] = []
        for index, pair in enumerate(pairs):
            result, variants = token_patching(
                adapter, base, pair, seeds, heads, metric, words=self.words, steps=self.patch_steps,
                branch=self.branch, batch_size=self.batch_size, progress=False,
            )  # fmt: skip
            effects = result.effects(n_boot=200)
            for v in variants:
                effect = effects[v.variant.label]
                role = (
                    "concept"
                    if v.concept
                    else ("all" if v.word == "<all>" else "other" if v.word == OTHER else "word")
                )
                rows.append(
                    Row(
                        "word_patching_effect", effect.mean, concept=concept, prompt=pair.clean, site=v.head,
                        steps=str(self.patch_steps), branch=self.branch,
                        labels={"pair": index, "word": v.word, "role": role, "tokens": len(v.variant.tokens or ()),
                                "ci_low": effect.ci_low, "ci_high": effect.ci_high},
                    )
                )  # fmt: skip
            concept_words = {v.word for v in variants if v.concept}
            request = ctx.request([pair.clean], [seeds[0]])
            layers = sorted({h.layer for h in heads})
            patterns = read_patterns(adapter, request, layers, steps=self.patch_steps)
            for head in heads:
                pattern = patterns.probabilities[head.layer]
                tokens = context_of(adapter, head.layer, pair.clean, pattern.shape[-1])
                for word, share in attention_by_word(pattern, tokens, 0, int(head.head or 0)).items():
                    role = "concept" if word in concept_words else ("other" if word == OTHER else "word")
                    rows.append(
                        Row(
                            "attention_share", share, concept=concept, prompt=pair.clean, site=head.name,
                            steps=str(self.patch_steps), branch="cond", seed=seeds[0],
                            labels={"pair": index, "word": word, "role": role},
                        )
                    )  # fmt: skip
        return rows

    def finalize(self, ctx: StepContext) -> dict[str, Any]:
        from interp.plots import plot_word_heatmap, plot_word_roles
        from interp.word_reading import summarize_roles

        roles: dict[str, dict[str, dict[str, float]]] = {}
        attention: dict[str, dict[str, dict[str, float]]] = {}
        for concept in dict.fromkeys(r.concept for r in ctx.rows if r.concept is not None):
            mine = [r for r in ctx.rows if r.concept == concept]
            patching = [
                {"head": r.site, "pair": r.labels["pair"], "word": r.labels["word"], "role": r.labels["role"],
                 "effect": r.value}
                for r in mine if r.metric == "word_patching_effect"
            ]  # fmt: skip
            roles[concept] = summarize_roles(patching)
            attention[concept] = _attention_by_role(r for r in mine if r.metric == "attention_share")
            ctx.save_plot(
                plot_word_roles(roles[concept], f"{concept}: token patching of each head's keys and values"),
                f"roles-{concept}",
            )
            first = [r for r in mine if r.labels.get("pair") == 0]
            if first:
                prompt = first[0].prompt
                for metric, name, label in (
                    ("word_patching_effect", "patching", "normalized effect"),
                    ("attention_share", "attention", "attention share"),
                ):
                    grid: dict[str, dict[str, float]] = {}
                    for r in first:
                        if r.metric == metric:
                            word = f"{r.labels['word']}{' *' if r.labels['role'] == 'concept' else ''}"
                            grid.setdefault(str(r.site), {})[word] = r.value
                    title = f"{concept}, {name} per word of\n{prompt!r} (*: concept word)"
                    ctx.save_plot(plot_word_heatmap(grid, title, label), f"{name}-{concept}")
        return {"roles": roles, "attention": attention}


def _attention_by_role(rows: Any) -> dict[str, dict[str, float]]:
    """Per head: mean attention share on the concept word(s), on all other words together,
    and on the positions of no word, over the pairs."""
    sums: dict[str, dict[str, dict[int, float]]] = {}
    for r in rows:
        role = {"concept": "concept", "word": "other_words", "other": "no_word"}[r.labels["role"]]
        per_pair = sums.setdefault(r.site, {}).setdefault(role, {})
        per_pair[r.labels["pair"]] = per_pair.get(r.labels["pair"], 0.0) + r.value
    return {
        head: {role: sum(v.values()) / len(v) for role, v in by_role.items()}
        for head, by_role in sums.items()
    }


def _is_cross_head(name: str) -> bool:
    try:
        site = Site.parse(name)
    except TadaError:
        return False
    return site.attention == "cross" and site.component == "head"
