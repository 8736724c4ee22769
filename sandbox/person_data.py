"""What generated members are made of: names (with their ascii forms), domains, countries, plans.

Fixed tables, so every member is a pure function of (seed, cohort id, index).
"""

from __future__ import annotations

import datetime as dt

from sandbox.cohort_specs import BASE_TIME_MS

# Sign-up dates over the 900 days before the base time (precomputed: members are generated hot).
SIGNUP_DATES = tuple(
    (dt.datetime.fromtimestamp(BASE_TIME_MS // 1000, tz=dt.timezone.utc) - dt.timedelta(days=d))
    .date()
    .isoformat()
    for d in range(900)
)

# (display name, ascii form used in email addresses)
FIRST_NAMES = (
    ("Anna", "anna"),
    ("Ben", "ben"),
    ("Chloé", "chloe"),
    ("David", "david"),
    ("Emma", "emma"),
    ("Felix", "felix"),
    ("Grace", "grace"),
    ("Hugo", "hugo"),
    ("Isabel", "isabel"),
    ("Jonas", "jonas"),
    ("Karin", "karin"),
    ("Liam", "liam"),
    ("Maya", "maya"),
    ("Noah", "noah"),
    ("Olivia", "olivia"),
    ("Pedro", "pedro"),
    ("Quinn", "quinn"),
    ("Rosa", "rosa"),
    ("Sam", "sam"),
    ("Tara", "tara"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("太郎", "taro"),
    ("José", "jose"),
    ("Søren", "soren"),
    ("François", "francois"),
    ("Ana María", "anamaria"),
)
FIRST_NAME_POSITION = {name: n for n, (name, _) in enumerate(FIRST_NAMES)}
LAST_NAMES = (
    ("Smith", "smith"),
    ("Müller", "mueller"),
    ("Garcia", "garcia"),
    ("Rossi", "rossi"),
    ("Novak", "novak"),
    ("Dubois", "dubois"),
    ("Jansen", "jansen"),
    ("Kowalski", "kowalski"),
    ("Nielsen", "nielsen"),
    ("O'Brien", "obrien"),
    ("Ñúñez", "nunez"),
    ("山田", "yamada"),
    ("Papadopoulos", "papadopoulos"),
    ("van der Berg", "vanderberg"),
    ("Lindqvist", "lindqvist"),
    ("Brown", "brown"),
    ("Schmidt", "schmidt"),
    ("Fernández", "fernandez"),
    ("Ivanova", "ivanova"),
)
LONG_LAST_NAME = (
    "Wolfeschlegelsteinhausenbergerdorff-Montgomery-Fitzwilliam-Smythe",
    "wolfeschlegel",
)
DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "web.de",
    "acme-corp.io",
    "globex.net",
    "initech.com",
    "orange.fr",
    "proton.me",
    "umbrella-labs.eu",
)
COUNTRIES = (
    "United States",
    "Germany",
    "France",
    "United Kingdom",
    "Spain",
    "Poland",
    "Japan",
    "Netherlands",
    "Denmark",
    "Brazil",
)
PLANS = ("free", "trial", "pro", "business", "enterprise")
COMPANIES = (
    "Acme, Inc.",
    "Globex",
    "Initech",
    "Umbrella Labs",
    "Stark Industries",
    'Vandelay "Imports"',
    "Line one\nLine two Ltd",
    "",
    "Hooli",
)
