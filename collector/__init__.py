"""The collector: MQTT messages in, readings or quarantine rows out, acknowledged after commit.

Data flow, one module per stage:
``mqtt`` (receive, unacknowledged) → ``decode`` (bytes → raw items) →
``validate`` (items → readings or rejections, against the ``registry_cache``) →
``writer`` (COPY + ``ON CONFLICT`` in one transaction) → ``mqtt`` (acknowledge).
``service`` wires the stages; ``metrics`` and ``health`` expose counters.
"""
