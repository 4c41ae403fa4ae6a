"""How long a GPU node takes for a 7-9B policy: decode, prefill, learner step, weight sync and device step.

benchmarks/async_rl.py (cluster timing) pads the real tiny engine's and learner's calls to these durations,
so the orchestration (collector, admission, staleness, weight sync, checkpoints, curriculum) runs for real
at the time ratios of a GPU node, while this machine's CPU contention stays out of the figures.

The node modelled: one 8x H100 SXM host, 4 GPUs serving 4 vLLM replicas (tensor parallel 1, bf16) and 4
GPUs training (FSDP / ZeRO, bf16), for an 8B dense model. Every constant says where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimingModel:
    """Seconds per unit of work on the modelled node; `scale` multiplies every duration (shorter runs)."""

    # Decode of one sequence at concurrency 1, per token. Decode is memory-bound: each step reads the
    # weights once, 2 bytes x 8e9 params = 16 GB; an H100 SXM reads 3.35 TB/s (NVIDIA H100 datasheet), and
    # vLLM reaches ~77% of the bandwidth roofline at one request (Llama-3.1-8B on an A100 40GB: ~75 tok/s,
    # "about 77% of the GPU's memory-bandwidth ceiling", johnmusgrave.com/p/vllm-throughput-latency-sweep-on,
    # vLLM 0.23). 16e9 / (3.35e12 x 0.77) = 6.2 ms per token.
    decode_s_per_token: float = 0.0062
    # How per-token latency grows with the requests decoding together on one replica. Same sweep: batching
    # to 8 concurrent requests gives 6.6x the throughput of one, so 8 / (1 + 8a) = 6.6, a = 0.027.
    decode_batch_slowdown: float = 0.027
    # Prefill is compute-bound: 2 x 8e9 FLOPs per token at ~50% of an H100's 989 dense bf16 TFLOPS
    # (NVIDIA datasheet) = 32 us per prompt token. Charged on the whole prompt (no prefix-cache credit:
    # conservative for the engine, which only makes the engine share of a step larger).
    prefill_s_per_token: float = 3.2e-5
    engine_replicas: int = 4
    # Learner throughput: torchtitan's Llama 3.1 8B, FSDP, 8x H100, bf16, selective activation
    # checkpointing: 5,762 tokens/s per GPU for forward + backward (pytorch/torchtitan docs/performance.md,
    # Table 1). An RL step also recomputes the old logprobs (one forward, ~1/3 of forward + backward):
    # 5,762 x 3/4 = 4,321 tokens/s per GPU, on 4 GPUs.
    learner_tokens_per_s_per_gpu: float = 4321.0
    learner_gpus: int = 4
    # Weight sync to the engines: verl reports NCCL sync "under 300ms" for 7B in its one-step-off
    # recipe (../shared/reference/rl-frameworks.md, 9.1).
    weight_sync_s: float = 0.3
    # One device step (act, settle, read the screen): android_world's agents wait transition_pause = 1.0 s
    # before they read the state (android_world/agents/base_agent.py); the adb round trips come on top.
    device_step_s: float = 1.0
    scale: float = 1.0

    def generate_s(self, prompt_tokens: int, response_tokens: int, in_flight: int) -> float:
        """One request: its prefill, then its tokens at the per-token latency of `in_flight` requests."""
        per_replica = max(1.0, in_flight / self.engine_replicas)
        tpot = self.decode_s_per_token * (1 + self.decode_batch_slowdown * per_replica)
        return self.scale * (prompt_tokens * self.prefill_s_per_token + response_tokens * tpot)

    def train_s(self, tokens: int) -> float:
        """One learner step over `tokens` (prompt + response tokens of every sample)."""
        return self.scale * tokens / (self.learner_tokens_per_s_per_gpu * self.learner_gpus)

    def sync_s(self) -> float:
        return self.scale * self.weight_sync_s

    def device_s(self) -> float:
        return self.scale * self.device_step_s
