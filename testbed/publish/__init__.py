"""Publication for standards bodies: implementations registry, interop matrix, run diff and a static results site."""
