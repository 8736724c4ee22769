"""List naming: template, fixed name, 100-character limit, streams without cohort fields."""

from __future__ import annotations

import pytest
from target_sendgrid_contacts.list_names import (
    DEFAULT_TEMPLATE,
    ListNamer,
    render_list_name,
    template_placeholders,
)


def test_default_template_names_a_cohort_like_amplitude_does():
    assert (
        render_list_name(DEFAULT_TEMPLATE, cohort_id="abc1", cohort_name="Power users", stream="s")
        == "[Amplitude] Power users: abc1"
    )


def test_long_cohort_names_are_shortened_so_the_id_survives():
    name = render_list_name(DEFAULT_TEMPLATE, cohort_id="abc1", cohort_name="N" * 150, stream="s")
    assert len(name) == 100
    assert name.endswith("…: abc1")


def test_fixed_list_name_wins():
    namer = ListNamer(
        list_name="Newsletter", template=DEFAULT_TEMPLATE, stream="s", has_cohort_fields=True
    )
    assert namer.name_for("a", "b") == "Newsletter"


def test_stream_without_cohort_fields_goes_to_a_list_named_after_the_stream():
    namer = ListNamer(
        list_name=None, template=DEFAULT_TEMPLATE, stream="signups", has_cohort_fields=False
    )
    assert namer.falls_back_to_stream
    assert namer.name_for(None, None) == "signups"
    stream_template = ListNamer(
        list_name=None, template="From {stream}", stream="signups", has_cohort_fields=False
    )
    assert stream_template.name_for(None, None) == "From signups"


@pytest.mark.parametrize("template", ["{cohort}", "{0}", "{}", "oops {"])
def test_bad_templates_are_refused(template):
    with pytest.raises(ValueError, match="list_name_template"):
        template_placeholders(template)
