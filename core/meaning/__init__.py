"""Replies understood by meaning: a small multilingual sentence-embedding model and the rules
embeddings handle badly (negation, contrast, slang), with an explicit "unclear" band."""
