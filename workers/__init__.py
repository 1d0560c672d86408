"""arq workers: thin job functions over domain services."""
