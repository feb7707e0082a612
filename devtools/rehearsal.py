"""A live rehearsal of an organizer's own campaign: ``python -m devtools.devstack --rehearse CAMPAIGN_FILE --data DIR``.

The devstack (:mod:`devtools.devstack`) starts S3, SMTP and Airflow standalone on loopback as for the
demo; this module prepares what plays on it instead of the demo:

- a copy of the organizer's campaign file (same id, same tasks) whose milestones are
  ``--minutes-apart`` minutes apart from a couple of minutes after the start, with the DAGs unpaused
  at creation, so Airflow's own scheduler fires every stage;
- the organizer's data folder (laid out as docs/organizers.md says: ``staging/``, ``gold/``,
  ``registrations/agreements/``) uploaded to the campaign bucket before anything fires;
- a watcher that prints one line per DAG run state change and, when a run ends, what changed in the
  bucket since the previous report (``releases/bird-tags +5``, ``outbox/results +2``...): what each
  stage did (runs ending in the same poll share one report).

No one plays the participants unless ``--stand-ins`` asks for it: the organizer registers through the
portal, uploads test runs with the e-mailed links, approves agreements and the results through the
UI or the REST calls of docs/organizers.md. With ``--stand-ins``, the demo's stand-in participants
upload the folder's ``registrations/*.json`` just after registration opens and its ``runs/`` just
after the test release, and the stand-in organizer approves the agreements those registrations
name. The results approval is always left to the organizer.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

UTC = dt.timezone.utc
TERMINAL = ("success", "failed")


class RehearsalError(ValueError):
    """The rehearsal cannot start: the message says why (a broken campaign file, a data folder that
    does not follow docs/organizers.md)."""


def check_arguments(campaign_file: str, data: Path | None) -> None:
    """Raise :class:`RehearsalError` before anything starts when the campaign or the folder is unusable."""
    from include.campaign.config import ConfigError, load_campaign

    if data is None:
        raise RehearsalError("--rehearse needs --data DIR: the folder of your staging, gold and agreements (docs/organizers.md, Rehearse)")
    if not (Path(data) / "staging").is_dir():
        raise RehearsalError(f"{data} has no staging/ folder (see docs/organizers.md, Rehearse)")
    from devtools.demo.folder import DataFolderError, read_data_folder

    try:
        read_data_folder(load_campaign(campaign_file).id, Path(data))
    except ConfigError as error:
        raise RehearsalError(error.render()) from None
    except DataFolderError as error:
        raise RehearsalError(str(error)) from None


class Rehearsal:
    """The organizer's campaign replayed live on the devstack's servers."""

    def __init__(self, ctx, data_folder: Path, stand_ins: bool, say: Callable[[str], None]):
        from devtools.demo.folder import read_data_folder

        self.ctx, self.data_folder, self.with_stand_ins, self.say = ctx, Path(data_folder), stand_ins, say
        self.data = read_data_folder(ctx.campaign.id, self.data_folder)
        self.seen: set[str] = set()

    def upload(self) -> None:
        """Staging, gold and agreements of the folder into the bucket; says how much of what."""
        from devtools.demo.folder import upload_data_folder

        count = upload_data_folder(self.ctx, self.data_folder)
        self.seen = set(self.ctx.store.list_keys(self.ctx.layout.campaign + "/"))
        runs = sum(len(r) for r in self.data.runs.values())
        self.say(f"rehearsal data: {count} staged, gold and agreement files uploaded from {self.data_folder}")
        if self.with_stand_ins:
            self.say(f"stand-ins: {len(self.data.registrations)} registration(s) of {self.data_folder / 'registrations'} and {runs} run(s) "
                     f"of {self.data_folder / 'runs'} go up at their moments; the agreements they name are approved")
        else:
            self.say("no stand-ins: register through the portal, upload runs with the e-mailed links, approve agreements "
                     "(and the results) yourself, as docs/organizers.md says; --stand-ins replays the folder's registrations/ and runs/")

    def start(self, ui: str, password: str, threads) -> None:
        """Start the watcher (and the stand-ins when asked) under the devstack's supervision."""
        from devtools.demo.live import AirflowApi, Organizer, Participants, watch_dag_runs

        threads.start("the DAG-run watcher", watch_dag_runs, AirflowApi(ui, "admin", password), self.ctx.campaign.id, self.say, threads.stop,
                      5.0, 300.0, self.report)
        if self.with_stand_ins:
            threads.start("the stand-in organizer", Organizer(self.ctx, self.data, AirflowApi(ui, "admin", password), self.say).play)
            threads.start("the stand-in participants", Participants(self.ctx, self.data, self.say).play)
        self.say(f"the results approval waits for you: {ui}, Required actions (or the REST call of docs/organizers.md)")

    def report(self, changed: list[dict]) -> None:
        """After a poll in which DAG runs ended: what they wrote to the bucket (new objects since the last report)."""
        ended = [run["dag_id"].removeprefix(self.ctx.campaign.id + "_") for run in changed if run["state"] in TERMINAL]
        if not ended:
            return
        lines = self.changes()
        self.say(f"{'':9}{' and '.join(ended)} wrote: " + ("nothing new" if not lines else ""))
        for line in lines:
            self.say(f"{'':11}{line}")

    def changes(self) -> list[str]:
        """New objects under the campaign since the last call, counted per area (``releases/<task>``, ``outbox/<purpose>``...)."""
        prefix = self.ctx.layout.campaign + "/"
        keys = set(self.ctx.store.list_keys(prefix))
        new, self.seen = sorted(keys - self.seen), keys
        areas = Counter("/".join(key[len(prefix):].split("/")[:2]) for key in new)
        return [f"{area:<44} +{count}" for area, count in sorted(areas.items())]


def prepare(campaign_file: str, data: Path, stand_ins: bool, demo_dir: Path, start: dt.datetime, minutes_apart: float,
            scoring_minutes: float, ctx_for: Callable) -> tuple[Path, Rehearsal]:
    """Write the rehearsal copy of the campaign into ``demo_dir/campaigns``, print its calendar, upload
    the data; returns (the copy, the :class:`Rehearsal` to start once Airflow answers).

    ``ctx_for(path)`` gives the campaign context on the devstack's store for a campaign file."""
    from devtools.devstack import print_calendar, write_demo_campaign

    copy = write_demo_campaign(Path(campaign_file), demo_dir / "campaigns", start, minutes_apart * 60, scoring_minutes)
    print_calendar(copy, "rehearsal copy")
    rehearsal = Rehearsal(ctx_for(copy), data, stand_ins, lambda line: print(line, flush=True))
    rehearsal.upload()
    return copy, rehearsal


def fail(message: str) -> int:
    print(f"devstack --rehearse: {message}", file=sys.stderr, flush=True)
    return 2
