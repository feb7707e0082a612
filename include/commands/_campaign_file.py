"""What every command that reads a campaign file does first: load it, or print every problem."""
from __future__ import annotations

import sys


def load_or_explain(path: str):
    """The campaign, or None after printing the file's problems to stderr (the command exits 2)."""
    from include.campaign.config import ConfigError, load_campaign

    try:
        return load_campaign(path)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return None
