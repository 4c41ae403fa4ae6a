"""Inference engines behind one contract: vLLM (AsyncLLM in Ray actors) and transformers, plus a router."""
