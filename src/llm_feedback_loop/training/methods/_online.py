"""What GRPO and RLOO share (a private module: not a method itself): the policy samples several answers to
each prompt, the rewards (training/rewards.py) score them, and the policy moves toward the better ones with a
KL pull (`beta`) to its reference.

Defaults for a CPU and small models, where TRL's assume GPUs (bf16, gradient checkpointing, GRPO's beta=0.0,
i.e. no KL at all, 8 generations of up to 512 tokens): fp32 and no checkpointing on CPU (shared_arguments;
`--bf16` chooses bf16 mixed precision, not measured for these methods),
`beta` 0.1 (a learned reward is easy to over-optimise without a pull to the reference), 4 generations of up
to 64 tokens, and LoRA on the top 40% of the layers unless a run says otherwise.

The LoRA learning rate was measured on SmolLM2-135M-Instruct (GRPO, 20 steps of 2 prompts x 4 answers, a
reward model trained on one round of `concise` feedback; held-out task score from 0.309, coherence 1.000):
5e-4 gave 0.452 (coherence 0.976), 1e-3 gave 0.476 (1.000), 2e-3 gave 0.833 but broke coherence (0.833: the
policy found answers the reward model likes that are wrong). 1e-3 is the default. The full fine-tuning rate
(1e-5) is scaled like the offline methods' and not measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from llm_feedback_loop.training.methods.base import (
    BETA,
    LearningRates,
    Prepared,
    Setting,
    TrainingJob,
    TrainingMethod,
    shared_arguments,
    trainer_inputs,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from llm_feedback_loop.training.config import TrainConfig

# Bounds on what a run (one from the API included) may ask for: each reward is looked up and called for every
# answer, and every generation of every prompt is held in memory at once.
MAX_REWARDS = 8

ONLINE_SETTINGS: dict[str, Setting] = {
    "beta": BETA,
    "reward": (
        list[str],
        Field(
            default_factory=list,
            max_length=MAX_REWARDS,
            description="GRPO/RLOO: what scores the sampled answers: a reward model version (id or name) or folder, "
            "or fn:MODULE:FUNCTION / fn:FILE.py:FUNCTION; repeat for several.",
        ),
    ),
    "reward_weight": (
        list[float],
        Field(
            default_factory=list,
            max_length=MAX_REWARDS,
            description="GRPO/RLOO: one weight per --reward (default: all 1).",
        ),
    ),
    "reward_judge_model": (
        str | None,
        Field(default=None, description="GRPO/RLOO: the model a --reward http(s)://.../v1 judge is asked."),
    ),
    "use_vllm": (
        bool,
        Field(default=False, description="GRPO/RLOO: sample the answers with vLLM (a GPU with vllm installed)."),
    ),
    "num_generations": (
        int,
        Field(default=4, ge=2, le=64, description="GRPO/RLOO: answers sampled per prompt (they are compared)."),
    ),
    "max_completion_length": (
        int,
        Field(default=64, ge=1, le=8192, description="GRPO/RLOO: most tokens per sampled answer."),
    ),
    "temperature": (
        float,
        Field(default=1.0, gt=0, le=5, description="GRPO/RLOO: sampling temperature of the answers."),
    ),
}


class OnlineMethod(TrainingMethod):
    """GRPO or RLOO: a subclass names TRL's config and trainer."""

    kind = "prompt"
    learning_rates = LearningRates(full=1e-5, lora=1e-3)
    # LoRA on the top 40% of the layers: the policy and its reference are then one model (the reference is the
    # adapter switched off), so a step holds one copy of the weights and no second model's forward state.
    defaults: ClassVar[dict[str, Any]] = {"lora": True, "lora_top_layers": 0.4}
    settings: ClassVar[dict[str, Setting]] = ONLINE_SETTINGS
    # What tells whether the run learns anything: the reward and its spread, the share of prompts whose answers
    # all scored the same (they teach nothing), the pull from the reference, and the answers' lengths.
    logged = (
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "kl",
        "completions/clipped_ratio",
        "completions/mean_length",
    )

    def check(self, config: TrainConfig) -> None:
        if not config.reward:
            raise ValueError(f"{self.name} needs a reward: --reward VERSION (a reward model) or --reward fn:MODULE:FN")
        if config.reward_weight and len(config.reward_weight) != len(config.reward):
            raise ValueError(
                f"give one --reward-weight per --reward ({len(config.reward)} rewards, "
                f"{len(config.reward_weight)} weights)"
            )
        if config.use_vllm:
            import importlib.util

            if importlib.util.find_spec("vllm") is None:
                raise ValueError("use_vllm: vLLM is not installed (pip install vllm, on a machine with a GPU)")
        if config.batch_size % config.num_generations:
            raise ValueError(
                f"batch_size ({config.batch_size}) must be a multiple of num_generations ({config.num_generations}): "
                "each step compares the answers to whole prompts"
            )

    def prepare(self, config: TrainConfig, rows: list[dict[str, Any]], find_version: Callable[[str], Any]) -> Prepared:
        from llm_feedback_loop.training.data import to_dataset
        from llm_feedback_loop.training.rewards import FUNCTION_PREFIX, JUDGE_PREFIXES, load_function, probe

        prompts = list(to_dataset(rows[:2], config.method, config.chat_template)["prompt"])
        rewards: list[Any] = []
        lineage: list[dict[str, Any]] = []
        for spec in config.reward:
            if spec.startswith(JUDGE_PREFIXES):
                judge = judge_of(spec, config.reward_judge_model)
                probe(judge, prompts)  # reachable, and answering, before the policy loads
                rewards.append(judge)
                lineage.append({"reward": judge.spec, "judge_model": config.reward_judge_model})
            elif spec.startswith(FUNCTION_PREFIX):
                function = load_function(spec)
                probe(function, prompts)
                rewards.append(function)
                lineage.append({"reward": spec, "function": spec.removeprefix(FUNCTION_PREFIX)})
            else:
                model = reward_model_of(spec, find_version)
                rewards.append(model)
                lineage.append(model.lineage())
        return Prepared(lineage={"rewards": lineage}, inputs={"rewards": rewards})

    def trainer_classes(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def build_trainer(self, job: TrainingJob) -> Any:
        from llm_feedback_loop.training.rewards import RewardModel, merged_reward_model

        config_class, trainer_class = self.trainer_classes()
        config = job.config
        arguments = shared_arguments(job) | {"remove_unused_columns": False}
        args = config_class(
            **arguments,
            beta=config.beta,
            num_generations=config.num_generations,
            max_completion_length=config.max_completion_length,
            temperature=config.temperature,
            reward_weights=config.reward_weight or None,
            use_vllm=config.use_vllm,
            log_completions=False,
        )
        funcs = [
            merged_reward_model(reward, job.output_dir) if isinstance(reward, RewardModel) else reward
            for reward in job.inputs["rewards"]
        ]
        return trainer_class(reward_funcs=funcs, **trainer_inputs(job, args))

    def report(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {"held_out_reward": metrics["eval_reward"]} if "eval_reward" in metrics else {}


def judge_of(url: str, model: str | None) -> Any:
    import os

    from llm_feedback_loop.training.rewards import JudgeReward

    return JudgeReward(url, model, os.environ.get("JUDGE_API_KEY"))


def reward_model_of(spec: str, find_version: Callable[[str], Any]) -> Any:
    """The reward model `spec` names (a registered version, or a folder); RewardError if it is not one."""
    from pathlib import Path

    from llm_feedback_loop.models.loader import run_model
    from llm_feedback_loop.training.methods import makes_reward_model
    from llm_feedback_loop.training.rewards import RewardError, RewardModel, is_reward_model_folder

    version = find_version(spec)
    if version is not None:
        if not makes_reward_model(version.method):
            raise RewardError(
                f"--reward {spec}: version {version.name} was made by {version.method}, not `llmfl train reward`; "
                "give a reward model version, a reward model folder or fn:MODULE:FUNCTION"
            )
        return RewardModel(spec, str(run_model(Path(version.source))), version.id, version.name)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise RewardError(
            f"--reward {spec}: no such version (`llmfl models list`) or folder; or give fn:MODULE:FUNCTION"
        )
    folder = run_model(folder)
    if not is_reward_model_folder(folder):
        raise RewardError(f"--reward {spec}: {folder} is not a reward model (one output per sequence)")
    return RewardModel(spec, str(folder.resolve()))
