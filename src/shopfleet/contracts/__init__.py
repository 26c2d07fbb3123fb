"""What services promise each other: internal paths, bodies, problem types, cache scopes.

Defined once here and imported by both the serving service and its callers, so the two
sides cannot drift apart (services never import each other: `lint-imports`);
`tests/test_contracts.py` checks each caller against the serving service's schema.
"""
