"""Teacher-forced logprobs of response tokens under a model: the trainer's recomputation of old logprobs.

The same numbers an engine stores while sampling (log-softmax of the raw logits), computed in one
forward pass over prompt + response; on CPU in float32 they agree with the engine's to ~1e-6.
"""

from __future__ import annotations

from typing import Any


def score(model: Any, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
    """Logprob of each response token given the prompt and the response tokens before it."""
    return score_batch(model, [(prompt_ids, response_ids)])[0]


def score_batch(model: Any, pairs: list[tuple[list[int], list[int]]], pad_id: int = 0) -> list[list[float]]:
    """`score` for many (prompt, response) pairs in one forward pass.

    Rows are padded on the right: a causal model never attends to later positions, so the padding
    changes no logit that is read and position ids stay 0, 1, 2, ... as in generation.
    """
    import torch

    if not pairs:
        return []
    for prompt, response in pairs:
        if not prompt or not response:
            raise ValueError(
                f"score needs a non-empty prompt and response; got {len(prompt)} prompt and "
                f"{len(response)} response tokens"
            )
    sequences = [list(prompt) + list(response) for prompt, response in pairs]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
    results: list[list[float]] = []
    for row, (prompt, response) in enumerate(pairs):
        # The logits at position i predict token i + 1.
        start = len(prompt) - 1
        rows = torch.log_softmax(logits[row, start : start + len(response)], dim=-1)
        picked = rows.gather(-1, torch.tensor(response, dtype=torch.long)[:, None])[:, 0]
        results.append(picked.tolist())
    return results
