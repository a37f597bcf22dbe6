"""Small specs for the executor tests: the default experiment, reduced."""

from typing import Any


def reduced_default(concepts: tuple[str, ...] = ("tempo", "mood"), steer: bool = True) -> dict[str, Any]:
    """The default experiment (locate, then CAA steering at the located heads) on fewer
    concepts, pairs and denoising steps."""
    steps: list[dict[str, Any]] = [
        {
            "name": "locate",
            "method": "locate",
            "pairs": {"source": "synthmusic", "concepts": list(concepts), "per_concept": 2},
            "fraction": 0.8,
            "max_heads": 2,
            "batch_size": 4,
        }
    ]
    if steer:
        steps.append(
            {
                "name": "steer_tempo",
                "method": "caa",
                "concept": "tempo",
                "target": "fast",
                "sites": {"from": "locate", "key": "subsets"},
                "pairs": {"source": "synthmusic", "per_concept": 4, "seed": 1},
                "eval_prompts": 1,
                "alphas": [-1, 0, 1],
                "distance": "latents",
                "budget": 1.0,
            }
        )
    return {
        "name": "reduced-default",
        "model": {"name": "synthmusic-dit"},
        "generation": {"num_steps": 2, "guidance_scale": 4.0, "seeds": [0]},
        "steps": steps,
    }
