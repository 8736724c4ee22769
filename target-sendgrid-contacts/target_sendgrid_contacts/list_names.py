"""Pure naming of destination lists from the settings and a record's cohort fields."""

from __future__ import annotations

import string

LIST_NAME_MAX_LENGTH = 100
DEFAULT_TEMPLATE = "[Amplitude] {cohort_name}: {cohort_id}"
PLACEHOLDERS = frozenset({"cohort_name", "cohort_id", "stream"})
COHORT_PLACEHOLDERS = frozenset({"cohort_name", "cohort_id"})


def template_placeholders(template: str) -> set[str]:
    """Return the ``{names}`` a template uses.

    Args:
        template: A ``str.format`` template.

    Returns:
        The placeholder names.

    Raises:
        ValueError: The template is malformed or uses an unknown placeholder.
    """
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"list_name_template is malformed: {exc}") from exc
    unknown = names - PLACEHOLDERS
    if unknown or "" in names:
        raise ValueError(
            f"list_name_template may use {{cohort_name}}, {{cohort_id}} and {{stream}} only, "
            f"not {sorted(unknown) or ['{}']}"
        )
    return names


def render_list_name(template: str, *, cohort_id: str, cohort_name: str, stream: str) -> str:
    """Fill a template, shortening the cohort name so the result fits 100 characters.

    Args:
        template: ``list_name_template``.
        cohort_id: Cohort id ("" when the stream has none).
        cohort_name: Cohort name ("" when the stream has none).
        stream: Stream name.

    Returns:
        A list name of 1 to 100 characters.
    """
    values = {"cohort_id": cohort_id, "cohort_name": cohort_name, "stream": stream}
    name = template.format_map(values).strip()
    excess = len(name) - LIST_NAME_MAX_LENGTH
    if excess > 0 and "{cohort_name}" in template and cohort_name:
        uses = template.count("{cohort_name}")
        keep = max(len(cohort_name) - -(-excess // uses) - 1, 0)
        values["cohort_name"] = cohort_name[:keep].rstrip() + "…"
        name = template.format_map(values).strip()
    return name[:LIST_NAME_MAX_LENGTH] or stream[:LIST_NAME_MAX_LENGTH]


class ListNamer:
    """Chooses the destination list name of each record of one stream."""

    def __init__(
        self, *, list_name: str | None, template: str, stream: str, has_cohort_fields: bool
    ) -> None:
        """Create a namer.

        Args:
            list_name: Fixed list name (wins over the template), or None.
            template: ``list_name_template``.
            stream: Stream name.
            has_cohort_fields: Whether the stream's records carry cohort_id / cohort_name.
        """
        self.stream = stream
        self.fixed = list_name.strip()[:LIST_NAME_MAX_LENGTH] if list_name else None
        uses_cohort = bool(template_placeholders(template) & COHORT_PLACEHOLDERS)
        # Without cohort fields a cohort template would give one list named "[Amplitude] : ",
        # so such streams go to a list named after the stream.
        self.falls_back_to_stream = not self.fixed and uses_cohort and not has_cohort_fields
        self._template = "{stream}" if self.falls_back_to_stream else template
        self._cache: dict[tuple[str, str], str] = {}

    def name_for(self, cohort_id: object, cohort_name: object) -> str:
        """Return the list name for a record's cohort fields.

        Args:
            cohort_id: The record's ``cohort_id`` (None when absent).
            cohort_name: The record's ``cohort_name`` (None when absent).

        Returns:
            The list name.
        """
        if self.fixed:
            return self.fixed
        key = (
            "" if cohort_id is None else str(cohort_id),
            "" if cohort_name is None else str(cohort_name),
        )
        name = self._cache.get(key)
        if name is None:
            if len(self._cache) > 10_000:  # bounded: a stream with ever-new cohorts
                self._cache.clear()
            name = render_list_name(
                self._template, cohort_id=key[0], cohort_name=key[1], stream=self.stream
            )
            self._cache[key] = name
        return name
