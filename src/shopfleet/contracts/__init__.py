"""What services promise each other: internal paths, problem types, cache scopes.

Defined once here and imported by both the serving service and its callers, so the two
sides cannot drift apart (services never import each other: `lint-imports`).
"""
