"""Evaluation of retrieval, citations, grounding, refusals and answer language (`assistant eval`).

Question sets and reports live in `eval/` at the repository root; the shared open datasets are read
only here, never by the product.
"""
