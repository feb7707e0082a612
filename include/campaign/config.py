"""The campaign file: a typed model of one evaluation campaign and a loader whose errors explain themselves.

A campaign file (YAML, see ``include/campaigns/imageclef2025.yaml``) describes the lab, its
organizers, a global schedule, and its tasks; each task may override any global milestone and the
run-size limits. ``load_campaign`` returns a :class:`Campaign` or raises :class:`ConfigError`, which
lists every problem found, each with the file, the path inside it (``tasks[3].schedule.run_deadline``),
the line, and what was expected.

Dates: a milestone written as a date is a day in the campaign's time zone. Openings and releases
happen at the start of that day, deadlines and closings at its last second; a milestone written with
a time happens at that time (in the campaign's time zone unless it carries an offset).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, create_model, field_validator

# The milestones of a campaign, in the order they must happen: each with when a bare date fires
# ("start" = 00:00:00 of that day, "end" = 23:59:59 of that day) and how people read it. The one
# table: MILESTONES, MILESTONE_LABELS and the Schedule models below are derived from it.
MILESTONE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("registration_opens", "start", "registration opens"),
    ("dev_data_release", "start", "development data release"),
    ("test_data_release", "start", "test data release"),
    ("registration_closes", "end", "registration closes"),
    ("run_deadline", "end", "run submission deadline"),
    ("results_release", "start", "release of processed results"),
    ("working_notes_deadline", "end", "working-notes deadline"),
    ("notification", "start", "notification of acceptance"),
    ("camera_ready", "end", "camera-ready working notes"),
    ("conference_start", "start", "conference starts"),
    ("conference_end", "end", "conference ends"),
)
MILESTONES: dict[str, str] = {name: fires for name, fires, _ in MILESTONE_TABLE}
MILESTONE_LABELS: dict[str, str] = {name: label for name, _, label in MILESTONE_TABLE}

# Pairs (earlier, later) that must hold for every task's effective schedule. Registration may
# close before or after the data releases, so it is only ordered against opening and the deadline.
ORDER_RULES: tuple[tuple[str, str], ...] = (
    ("registration_opens", "registration_closes"),
    ("registration_opens", "dev_data_release"),
    ("dev_data_release", "test_data_release"),
    ("test_data_release", "run_deadline"),
    ("registration_closes", "run_deadline"),
    ("run_deadline", "results_release"),
    ("results_release", "working_notes_deadline"),
    ("working_notes_deadline", "notification"),
    ("notification", "camera_ready"),
    ("camera_ready", "conference_start"),
    ("conference_start", "conference_end"),
)

MIB = 1024 * 1024
GIB = 1024 * MIB
# Bounds on one submitted run, applied before and while it is read (hostile uploads): name -> (type,
# default, the value must be greater than this, what it bounds). The one table: the campaign file's
# run_limits (global and per task) and the validator's RunLimits are built from it
# (include/campaign/validation/limits.py explains the values).
RUN_LIMITS: dict[str, tuple[type, int | float, int | float, str]] = {
    "max_bytes": (int, 512 * MIB, 0, "Largest run file accepted, as stored (compressed when it is a zip)."),
    "max_uncompressed_bytes": (int, 2 * GIB, 0, "Largest total of the members' uncompressed sizes in a zip."),
    "max_compression_ratio": (float, 200.0, 1, "Largest uncompressed/compressed ratio of one zip member (zip bombs reach millions)."),
    "max_members": (int, 100_000, 0, "Most entries a zip may hold."),
    # A text run is parsed whole, at about ten times its size in memory (benchmarks/parse_memory.py).
    "max_text_bytes": (int, 32 * MIB, 0, "Largest text file a parser reads whole (the CSV or JSON of a run, bare or in its zip)."),
}

SLUG = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
Moment = dt.date | dt.datetime


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    name: str = Field(min_length=1)
    email: EmailStr
    affiliation: str | None = None
    role: str | None = None


Schedule = create_model(
    "Schedule", __base__=_Strict, __module__=__name__, __doc__="The global schedule: every milestone is required.",
    **{name: (Moment, ...) for name, _, _ in MILESTONE_TABLE},
)
ScheduleOverride = create_model(
    "ScheduleOverride", __base__=_Strict, __module__=__name__,
    __doc__="A task's own dates: any milestone it gives replaces the global one for that task.",
    **{name: (Moment | None, None) for name, _, _ in MILESTONE_TABLE},
)


class _RunLimitsBase(_Strict):
    def as_dict(self) -> dict:
        """The limits as JSON-able numbers, for reports."""
        return self.model_dump()


RunLimits = create_model(
    "RunLimits", __base__=_RunLimitsBase, __module__=__name__,
    __doc__="Upper bounds applied before and while a run is read (the campaign's run_limits, or the defaults).",
    **{name: (kind, Field(default=default, gt=floor, description=meaning)) for name, (kind, default, floor, meaning) in RUN_LIMITS.items()},
)
RunLimitsOverride = create_model(
    "RunLimitsOverride", __base__=_Strict, __module__=__name__, __doc__="A task's own run limits: any it gives replaces the global one.",
    **{name: (kind | None, Field(default=None, gt=floor)) for name, (kind, _, floor, _) in RUN_LIMITS.items()},
)


class Reminders(_Strict):
    """When working-notes reminders go out, in whole days before each milestone."""

    working_notes_days_before: tuple[int, ...] = (14, 7, 1)
    on_notification: bool = True
    camera_ready_days_before: tuple[int, ...] = (3,)

    @field_validator("working_notes_days_before", "camera_ready_days_before")
    @classmethod
    def _positive_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 0 for day in days):
            raise ValueError("reminder offsets are whole days before the milestone, 0 or more")
        return tuple(sorted(set(days), reverse=True))


class Links(_Strict):
    """Lifetimes of the presigned links participants receive (S3 SigV4 caps both at 7 days)."""

    download_expiry_hours: int = Field(default=168, gt=0, le=168)
    upload_expiry_hours: int = Field(default=168, gt=0, le=168)


class Task(_Strict):
    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=1)
    group: str | None = None
    url: str | None = None
    run_format: str
    metrics: tuple[str, ...] = Field(min_length=1)
    runs_allowed: int = Field(ge=1)
    requires_agreement: bool = False
    organizers: tuple[Person, ...] = ()
    schedule: ScheduleOverride = ScheduleOverride()
    run_limits: RunLimitsOverride = RunLimitsOverride()
    # Option names written flat apply to every metric of the task that reads them; a metric name
    # maps to options for that metric alone (checked against the registry in _check_registries).
    metric_options: dict[str, Any] = Field(default_factory=dict)
    # Settings of the run format for this task (a concept-id pattern, its wording...), among the
    # options the format's schema declares (include/schemas/, docs/organizers.md); checked below.
    format_options: dict[str, Any] = Field(default_factory=dict)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


class Campaign(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    lab: str = Field(min_length=1)
    website: str | None = None
    registration_url: str | None = None
    timezone: str
    organizers: tuple[Person, ...] = Field(min_length=1)
    contact_email: EmailStr
    announce_to: tuple[EmailStr, ...] = ()
    schedule: Schedule
    reminders: Reminders = Reminders()
    links: Links = Links()
    run_limits: RunLimits = RunLimits()
    intake_every_minutes: int = Field(default=15, ge=1, le=1440)
    submission_check_every_minutes: int = Field(default=5, ge=1, le=1440)
    tasks: tuple[Task, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r}: use an IANA name such as 'UTC', 'Europe/Madrid' or 'Etc/GMT+12' (Anywhere on Earth)"
            ) from None
        return name

    # --- derived views -------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(f"no task {task_id!r} in campaign {self.id}; tasks: {', '.join(self.task_ids)}")

    @property
    def task_ids(self) -> list[str]:
        return [task.id for task in self.tasks]

    def raw_milestone(self, milestone: str, task: Task | str | None = None) -> Moment:
        """The milestone as written: the task's override if it has one, else the global value."""
        if isinstance(task, str):
            task = self.task(task)
        if task is not None:
            override = getattr(task.schedule, milestone)
            if override is not None:
                return override
        return getattr(self.schedule, milestone)

    def milestone_time(self, milestone: str, task: Task | str | None = None) -> dt.datetime:
        """When a milestone happens, as an aware datetime in the campaign's time zone."""
        return to_moment(self.raw_milestone(milestone, task), MILESTONES[milestone], self.zone)

    def task_run_limits(self, task: Task | str) -> RunLimits:
        if isinstance(task, str):
            task = self.task(task)
        overrides = {k: v for k, v in task.run_limits.model_dump().items() if v is not None}
        return self.run_limits.model_copy(update=overrides)


def to_moment(value: Moment, when: str, zone: ZoneInfo) -> dt.datetime:
    """A date becomes the start or the last second of that day in ``zone``; a datetime keeps its time."""
    if isinstance(value, dt.datetime):
        return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)
    clock = dt.time(0, 0, 0) if when == "start" else dt.time(23, 59, 59)
    return dt.datetime.combine(value, clock, tzinfo=zone)


# --- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    location: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.location or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """Every problem found in one campaign file, each naming its place in the file."""

    def __init__(self, source: str, issues: Iterable[ConfigIssue]):
        self.source = source
        self.issues = list(issues)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.issues)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''} in the campaign file"
        return "\n".join([head] + ["  " + issue.render(self.source) for issue in self.issues])


# --- loading -----------------------------------------------------------------------------------


def load_campaign(path: str | Path) -> Campaign:
    """Read, validate and cross-check a campaign file; raise :class:`ConfigError` listing every problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [ConfigIssue("", "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"not UTF-8 text (byte {exc.start})")]) from None
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot read the file: {exc.strerror}")]) from None
    return parse_campaign(text, source)


def parse_campaign(text: str, source: str = "<campaign>") -> Campaign:
    data, lines = _read_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue("", "the file must be a mapping of campaign fields (id, name, schedule, tasks, ...)")])
    issues = _check_duplicate_task_ids(data, lines)
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        # every error in one round: the tasks that are well formed on their own still get their
        # formats, metrics and options checked
        issues += [_issue_from_pydantic(err, lines) for err in exc.errors()]
        raise ConfigError(source, issues + _check_well_formed_tasks(data, lines)) from None
    issues += _check_schedule(campaign, lines) + _check_registries(campaign, lines)
    if issues:
        raise ConfigError(source, issues)
    return campaign


def _check_duplicate_task_ids(data: dict[str, Any], lines: dict[str, int]) -> list[ConfigIssue]:
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return []
    seen: dict[str, int] = {}
    issues: list[ConfigIssue] = []
    for index, task in enumerate(tasks):
        task_id = task.get("id") if isinstance(task, dict) else None
        if not isinstance(task_id, str):
            continue
        if task_id in seen:
            location = f"tasks[{index}].id"
            issues.append(ConfigIssue(location, f"duplicate task id {task_id!r}: tasks[{seen[task_id]}] has it already", _line_for(location, lines)))
        else:
            seen[task_id] = index
    return issues


# A campaign file describes a lab: a few hundred values. Aliases (``*name``) may repeat a block, but
# nested aliases multiply (a 600-byte file can stand for a billion values), so the values the
# document stands for, aliases expanded, are counted against this bound before anything is built.
MAX_CAMPAIGN_VALUES = 100_000
MAX_CAMPAIGN_FILE_BYTES = 1024 * 1024


def _read_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    if len(text.encode("utf-8")) > MAX_CAMPAIGN_FILE_BYTES:
        raise ConfigError(source, [ConfigIssue("", f"the file is over {MAX_CAMPAIGN_FILE_BYTES:,} bytes; a campaign file is a few kilobytes of settings")])
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expanded_size(node, source)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, [ConfigIssue("", f"not valid YAML: {exc.problem}", line)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigIssue("", f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(source, [ConfigIssue("", "the document is nested too deeply to be a campaign file")]) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        try:
            _index_lines(node, "", lines)
        except RecursionError:
            raise ConfigError(source, [ConfigIssue("", "the document is nested too deeply to be a campaign file")]) from None
    return data, lines


def _check_expanded_size(root: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand to more than MAX_CAMPAIGN_VALUES values (a loop never ends, so it is caught too)."""
    budget = MAX_CAMPAIGN_VALUES
    stack = [root]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(source, [ConfigIssue("", (
                f"through YAML aliases (*name) the document expands to more than {MAX_CAMPAIGN_VALUES:,} values; "
                "a campaign file holds a few hundred: write the repeated blocks out, or nest fewer aliases"),
                _first_alias_line(root))])
        if isinstance(node, yaml.MappingNode):
            stack.extend(child for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _first_alias_line(root: yaml.Node) -> int | None:
    """The line of the first node used more than once (where aliases begin), if any."""
    counts: dict[int, int] = {}
    stack, order = [root], []
    while stack:
        node = stack.pop()
        counts[id(node)] = counts.get(id(node), 0) + 1
        if counts[id(node)] == 2:
            order.append(node.start_mark.line + 1)
            continue
        if counts[id(node)] > 2:
            continue
        if isinstance(node, yaml.MappingNode):
            stack.extend(child for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return min(order) if order else None


def _index_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    """Map every path inside the document (``tasks[3].schedule.run_deadline``) to its 1-based line."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            _index_lines(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, f"{path}[{index}]", lines)


def _location(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_for(location: str, lines: dict[str, int]) -> int | None:
    while location:
        if location in lines:
            return lines[location]
        shorter = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", location)
        if shorter == location:  # a top-level field not in the file (a missing one): no line
            return None
        location = shorter
    return None


_EXPECTATIONS = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field (check its spelling)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM:SS)",
    "datetime_from_date_parsing": "expected a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM:SS)",
}


def _issue_from_pydantic(error: dict[str, Any], lines: dict[str, int]) -> ConfigIssue:
    # Union members (date | datetime) and validators add their own names to the location: drop them.
    parts = [p for p in error["loc"] if not (isinstance(p, str) and (p in {"date", "datetime"} or p.startswith("function-")))]
    location = _location(parts)
    message = error["msg"]
    if error["type"] in _EXPECTATIONS:
        message = _EXPECTATIONS[error["type"]]
    elif error["type"] == "string_pattern_mismatch":
        message = f"{message} (got {error.get('input')!r}; ids use lower-case letters, digits and '-')"
    elif error["type"] == "value_error":
        message = str(error.get("ctx", {}).get("error", message))
        if "email" in location or "announce_to" in location or "contact_email" in location:
            message = f"malformed e-mail address {error.get('input')!r}: {message}"
    elif "input" in error and error["type"] not in ("missing",):
        message = f"{message} (got {error['input']!r})"
    return ConfigIssue(location, message, _line_for(location, lines))


def _check_schedule(campaign: Campaign, lines: dict[str, int]) -> list[ConfigIssue]:
    """Milestones out of order, for the global schedule and for each task's effective schedule."""
    issues: list[ConfigIssue] = []
    reported: set[tuple[str, str, str, str]] = set()
    for task in (None, *campaign.tasks):
        for earlier, later in ORDER_RULES:
            first = campaign.milestone_time(earlier, task)
            second = campaign.milestone_time(later, task)
            if first <= second:
                continue
            raw_first, raw_second = campaign.raw_milestone(earlier, task), campaign.raw_milestone(later, task)
            key = (earlier, later, str(raw_first), str(raw_second))
            if key in reported:
                continue  # a global error repeats in every task that does not override it
            reported.add(key)
            location = _owner_of(campaign, task, later)
            issues.append(
                ConfigIssue(
                    location,
                    f"milestones out of order: {MILESTONE_LABELS[earlier]} ({earlier}: {raw_first}) must come "
                    f"before {MILESTONE_LABELS[later]} ({later}: {raw_second})"
                    + (f" for task {task.id}" if task is not None else ""),
                    _line_for(location, lines),
                )
            )
    return issues


def _owner_of(campaign: Campaign, task: Task | None, milestone: str) -> str:
    if task is not None and getattr(task.schedule, milestone) is not None:
        return f"tasks[{campaign.tasks.index(task)}].schedule.{milestone}"
    return f"schedule.{milestone}"


def _check_well_formed_tasks(data: dict[str, Any], lines: dict[str, int]) -> list[ConfigIssue]:
    """The registry checks of each task that is valid on its own, when the campaign as a whole is not."""
    tasks = data.get("tasks") if isinstance(data.get("tasks"), list) else []
    issues: list[ConfigIssue] = []
    for index, raw in enumerate(tasks):
        try:
            task = Task.model_validate(raw)
        except ValidationError:
            continue  # its own errors are reported already
        issues += _check_task_registries(index, task, lines)
    return issues


def _check_registries(campaign: Campaign, lines: dict[str, int]) -> list[ConfigIssue]:
    """Run formats and metrics must exist, and each metric must apply to its task's run format."""
    issues: list[ConfigIssue] = []
    for index, task in enumerate(campaign.tasks):
        issues += _check_task_registries(index, task, lines)
    return issues


def _check_task_registries(index: int, task: Task, lines: dict[str, int]) -> list[ConfigIssue]:
    from include.metrics.registry import METRICS, metric_names
    from include.schemas import format_names

    formats = format_names()
    issues: list[ConfigIssue] = []
    if task.run_format not in formats:
        location = f"tasks[{index}].run_format"
        issues.append(ConfigIssue(location, f"unknown run format {task.run_format!r}; known formats: {', '.join(formats)}", _line_for(location, lines)))
    for position, name in enumerate(task.metrics):
        location = f"tasks[{index}].metrics[{position}]"
        if name not in METRICS:
            issues.append(ConfigIssue(location, f"unknown metric {name!r}; known metrics: {', '.join(metric_names())}", _line_for(location, lines)))
        elif task.run_format in formats and task.run_format not in METRICS[name].formats:
            issues.append(
                ConfigIssue(
                    location,
                    f"metric {name!r} does not apply to run format {task.run_format!r} (it scores {', '.join(METRICS[name].formats)})",
                    _line_for(location, lines),
                )
            )
    issues += _check_metric_options(index, task, formats, lines)
    issues += _check_format_options(index, task, formats, lines)
    return issues


def _check_format_options(index: int, task: Task, formats: list[str], lines: dict[str, int]) -> list[ConfigIssue]:
    """Every format option is one the task's run format declares, with a usable value."""
    from include.campaign.validation.schema import format_option_problems

    if task.run_format not in formats or not task.format_options:
        return []
    issues = []
    for key, message in format_option_problems(task.run_format, task.format_options):
        location = f"tasks[{index}].format_options.{key}" if key else f"tasks[{index}].format_options"
        issues.append(ConfigIssue(location, message, _line_for(location, lines)))
    return issues


def _check_metric_options(index: int, task: Task, formats: list[str], lines: dict[str, int]) -> list[ConfigIssue]:
    """Every metric option is read by one of the task's metrics (``include.metrics.option_problems``)."""
    from include.metrics import option_problems
    from include.metrics.registry import METRICS

    metrics = [name for name in task.metrics if name in METRICS and task.run_format in METRICS[name].formats]
    if task.run_format not in formats or len(metrics) != len(task.metrics) or not task.metric_options:
        return []  # unknown formats and metrics are reported above
    issues = []
    for key, message in option_problems(task.run_format, task.metric_options, metrics):
        location = f"tasks[{index}].metric_options.{key}"
        issues.append(ConfigIssue(location, message, _line_for(location, lines)))
    return issues
