"""dashboard: the A/B testing web page (``phasegate dashboard``) and terminal view (``watch``).

Modules, one concern each: ``summary`` (pure: /status -> figures, winner, rules, series),
``worker_client`` (GET /status), ``feeds`` (following the rollout log and the alerts),
``writer`` (appending to the rollout log), ``service`` (the page's data and actions, decided
by ``rollout.steering``), ``server`` (HTTP, token, assets in ``static/``), ``terminal``
(rich rendering for ``phasegate watch``), ``cli``.
"""
