"""A cited chat assistant over Japanese (and English) documents.

Importing the package does nothing: no folders, no models, no network. Build an `Assistant` with
`assistant.core.make_assistant(Settings())`.
"""

__version__ = "0.1.0"
