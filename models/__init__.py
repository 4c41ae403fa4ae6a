"""Model code the project owns: tiny presets per architecture family, its tokenizer corpus, teacher-forced scoring."""
