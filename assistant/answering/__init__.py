"""Answering: the LCEL chain (`chain.make_pipeline`), the extractive answerer, chat models and guards."""
