"""Distill core: corpus, codebooks, LLM teachers, agreement, students, storage.

Nothing in this package imports streamlit; heavy libraries (torch, transformers) are imported
lazily inside the functions that need them.
"""

__version__ = "0.1.0"
