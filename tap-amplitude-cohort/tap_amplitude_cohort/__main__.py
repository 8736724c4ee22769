"""``python -m tap_amplitude_cohort``: the same CLI as ``tap-amplitude-cohort``."""

from __future__ import annotations

from tap_amplitude_cohort.tap import TapAmplitudeCohort

TapAmplitudeCohort.cli()
