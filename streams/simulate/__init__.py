"""``loanwatch simulate``: seeded, labelled borrower traffic (:mod:`.traffic`), sent by :mod:`.produce`.

The traffic side is pure and importable without Kafka; :mod:`.produce` is the only module that does I/O.
"""
