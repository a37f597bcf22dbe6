"""Python API misuse fails with a TadaError naming the argument, not deep in torch.

The test suite installs jaxtyping/beartype import hooks that would catch some of these
first, so the checks run in a plain interpreter, as a user's would."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, math
from interp.adapter import GenerationRequest as R
from interp.edits import Edit, Read, Scale, Zero
from interp.errors import TadaError
from interp.experiments import load_spec
site = "cross.0.head.1"
cases = {
    "edit-op-string": lambda: Edit(site, "zero"),
    "edit-steps-float": lambda: Edit(site, Zero(), steps=1.5),
    "edit-steps-bool": lambda: Edit(site, Zero(), steps=True),
    "edit-steps-list-floats": lambda: Edit(site, Zero(), steps=[0.5]),
    "edit-site-int": lambda: Edit(7, Zero()),
    "edit-site-arabic": lambda: Edit("cross.\u0661.head.\u0662", Zero()),
    "edit-branch-list": lambda: Edit(site, Zero(), branch=["cond"]),
    "read-samples-string": lambda: Read(site, samples="01"),
    "scale-nan": lambda: Scale(math.nan),
    "request-seed-float": lambda: R(prompts=("a",), seeds=(0.5,)),
    "request-seed-2to64": lambda: R(prompts=("a",), seeds=(2**64,)),
    "request-seed-negative": lambda: R(prompts=("a",), seeds=(-1,)),
    "request-seed-bool": lambda: R(prompts=("a",), seeds=(True,)),
    "request-steps-float": lambda: R(prompts=("a",), seeds=(0,), num_steps=2.5),
    "request-prompt-none": lambda: R(prompts=(None,), seeds=(0,)),
    "request-prompts-string": lambda: R(prompts="ab", seeds=(0, 1)),
    "request-guidance-nan": lambda: R(prompts=("a",), seeds=(0,), guidance_scale=math.nan),
    "request-guidance-inf": lambda: R(prompts=("a",), seeds=(0,), guidance_scale=math.inf),
    "request-duration-inf": lambda: R(prompts=("a",), seeds=(0,), duration_s=math.inf),
    "request-negative-unguided": lambda: R(prompts=("a",), seeds=(0,), guidance_scale=1.0, negative_prompt="x"),
    "load-spec-int": lambda: load_spec(5),
    "load-spec-bytes": lambda: load_spec(b"name: t"),
}
out = {}
for name, make in cases.items():
    try:
        make()
        out[name] = ["accepted", ""]
    except TadaError as error:
        out[name] = [type(error).__name__, str(error)]
    except Exception as error:
        out[name] = ["raw " + type(error).__name__, str(error)]
print(json.dumps(out))
"""

EXPECTED = {
    "edit-op-string": "Edit.op must be an Operation",
    "edit-steps-float": "Cannot read steps 1.5",
    "edit-steps-bool": "Cannot read steps True",
    "edit-steps-list-floats": "Cannot read steps [0.5]",
    "edit-site-int": "A site must be a string",
    "edit-site-arabic": "Malformed site",
    "edit-branch-list": "Unknown CFG branch",
    "read-samples-string": "samples must be None or a list",
    "scale-nan": "Scale.factor must be a finite number",
    "request-seed-float": "seeds[0] = 0.5",
    "request-seed-2to64": "0 <= seed < 2**63",
    "request-seed-negative": "seeds[0] = -1",
    "request-seed-bool": "seeds[0] = True",
    "request-steps-float": "num_steps must be an integer, got 2.5",
    "request-prompt-none": "prompts[0] must be a string, got None",
    "request-prompts-string": "prompts must be a list or tuple of strings",
    "request-guidance-nan": "guidance_scale must be a finite number",
    "request-guidance-inf": "guidance_scale must be a finite number",
    "request-duration-inf": "duration_s must be None or a finite number",
    "request-negative-unguided": "negative prompt would be ignored",
    "load-spec-int": "a spec is a YAML file path, a mapping or an ExperimentSpec, got int",
    "load-spec-bytes": "got bytes",
}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_misuse_raises_a_clear_tada_error(outcomes: dict[str, list[str]], case: str) -> None:
    kind, message = outcomes[case]
    assert kind not in ("accepted",) and not kind.startswith("raw "), (kind, message)
    assert EXPECTED[case] in message, message


def test_load_model_checks_device_and_name() -> None:
    import torch

    from interp.errors import DeviceError, ModelNotFoundError
    from interp.registry import load_model

    with pytest.raises(ModelNotFoundError, match="needs a model name"):
        load_model("  ")
    with pytest.raises(DeviceError, match="Unknown device 'gpu'"):
        load_model("tiny-stable-audio", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="finds none on this machine"):
            load_model("tiny-stable-audio", device="cuda")
