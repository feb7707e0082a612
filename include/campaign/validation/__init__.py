"""Run validation: check a submitted run against its task's format before it is scored.

``validate_run(format_name, run_path, gold_dir, limits=None)`` returns a
:class:`ValidationOutcome` (``.report`` JSON-able dict with the verdict, counts and every broken
rule with up to ten example lines; ``.text`` the same for e-mail; ``.run`` the canonical
DataFrame or None; ``.gold`` the gold tables). Formats are declared in ``include/schemas/``;
``docs/validation.md`` explains the rules and the design.
"""
from include.campaign.validation.gold import GoldError, load_gold
from include.campaign.validation.limits import RunLimits
from include.campaign.validation.validator import ValidationOutcome, validate_run

__all__ = ["GoldError", "RunLimits", "ValidationOutcome", "load_gold", "validate_run"]
