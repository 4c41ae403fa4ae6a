"""The DeepSpeed learner, SFT warm start, the training loop and weight sync to engines."""
